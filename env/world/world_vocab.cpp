#include "env/world/world_vocab.h"

namespace strata::env::vocab {

// Work type indices used below: 0 novel, 1 film, 2 album.
const std::vector<Occupation>& occupations() {
  static const std::vector<Occupation> kList = {
      {"writer", "literature", 0},
      {"film director", "cinema", 1},
      {"musician", "music", 2},
      {"physicist", "physics", -1},
      {"chemist", "chemistry", -1},
      {"architect", "architecture", -1},
      {"painter", "painting", -1},
      {"engineer", "engineering", -1},
      {"economist", "economics", -1},
      {"historian", "history", -1},
      {"journalist", "journalism", -1},
      {"surgeon", "medicine", -1},
      {"mathematician", "mathematics", -1},
      {"diplomat", "law", -1},
      {"botanist", "botany", -1},
      {"sculptor", "sculpture", -1},
  };
  return kList;
}

const std::vector<OrgType>& org_types() {
  static const std::vector<OrgType> kList = {
      {"company",
       {"{X} Industries", "{X} Holdings", "{X} Systems", "{X} Motors", "{X} Group", "{X} Foods",
        "{X} Dynamics", "{X} Textiles"},
       {"makes farm machinery", "builds railway carriages", "produces canned food",
        "manufactures electrical goods", "runs a chain of department stores"}},
      {"university",
       {"University of {X}", "{X} University", "{X} Institute of Technology", "{X} College"},
       {"teaches law and medicine", "is known for its school of engineering",
        "has a large botanical garden", "runs an observatory"}},
      {"bank",
       {"{X} Bank", "Bank of {X}", "{X} Savings Bank", "{X} Trust"},
       {"lends money to farmers", "finances shipping", "manages pension funds",
        "issues mortgages"}},
      {"newspaper",
       {"The {X} Herald", "The {X} Gazette", "The {X} Courier", "The {X} Tribune"},
       {"prints a morning edition", "is known for its political cartoons",
        "publishes a weekly literary supplement"}},
      {"record label",
       {"{X} Records", "{X} Music", "{X} Sound"},
       {"signs young bands", "reissues old recordings", "runs a recording studio"}},
      {"film studio",
       {"{X} Pictures", "{X} Studios", "{X} Films"},
       {"produces comedies", "owns a large backlot", "distributes foreign films"}},
      {"publishing house",
       {"{X} Press", "{X} Books", "{X} House"},
       {"publishes poetry", "prints school textbooks", "is known for its translations"}},
      {"research institute",
       {"{X} Institute", "{X} Laboratory", "{X} Research Centre"},
       {"studies crop diseases", "builds scientific instruments",
        "operates a particle accelerator"}},
  };
  return kList;
}

const std::vector<WorkType>& work_types() {
  static const std::vector<WorkType> kList = {
      {"novel",
       "author",
       "written by",
       "published",
       "Who wrote",
       {"mystery", "science fiction", "historical fiction", "fantasy", "romance", "thriller",
        "satire", "crime fiction"}},
      {"film",
       "director",
       "directed by",
       "released",
       "Who directed",
       {"drama", "comedy", "western", "documentary", "horror", "animation", "musical", "war film"}},
      {"album",
       "artist",
       "recorded by",
       "released",
       "Which musician recorded",
       {"jazz", "folk", "rock", "electronic", "blues", "hip hop", "classical", "punk"}},
  };
  return kList;
}

const std::vector<std::string_view>& title_adjectives() {
  static const std::vector<std::string_view> kList = {
      "Silent",   "Hidden",  "Broken",  "Golden",    "Distant",  "Last",    "Crimson",  "Quiet",
      "Northern", "Endless", "Burning", "Frozen",    "Hollow",   "Painted", "Restless", "Forgotten",
      "Bitter",   "Gentle",  "Iron",    "Lonely",    "Midnight", "Paper",   "Scarlet",  "Secret",
      "Shining",  "Stolen",  "Summer",  "Wandering", "Wild",     "Winter",  "Yellow",   "Brave",
      "Careless", "Empty",   "Falling", "Glass",     "Green",    "Lucky",   "Narrow",   "Open",
      "Pale",     "Rising",  "Salt",    "Sleeping",  "Thin",     "Velvet",  "White",    "Wooden",
      "Black",    "Blue"};
  return kList;
}

const std::vector<std::string_view>& title_nouns() {
  static const std::vector<std::string_view> kList = {
      "Harbour", "River",    "Garden",  "Mirror",   "Lantern", "Orchard", "Bridge",   "Tower",
      "Island",  "Letter",   "Voyage",  "Kingdom",  "Shadow",  "Window",  "Valley",   "Storm",
      "Promise", "Machine",  "Winter",  "Festival", "Circus",  "Engine",  "Compass",  "Feather",
      "Forest",  "Fountain", "Hunter",  "Journey",  "Ladder",  "Meadow",  "Mountain", "Ocean",
      "Painter", "Prisoner", "Railway", "Shore",    "Signal",  "Soldier", "Station",  "Stranger",
      "Sunrise", "Thief",    "Violin",  "Wall",     "Wedding", "Widow",   "Wind",     "Crown",
      "Dancer",  "Door"};
  return kList;
}

const std::vector<std::string_view>& title_patterns() {
  static const std::vector<std::string_view> kList = {
      "The {A} {N}",  "{N} of {X}",     "The {N} of {X}", "{X}'s {N}",
      "A {N} in {X}", "{A} {N} of {X}", "The {N} at {X}", "{X}"};
  return kList;
}

const std::vector<std::string_view>& traits() {
  static const std::vector<std::string_view> kList = {
      "patient",  "restless",  "methodical", "generous", "stubborn",  "witty",
      "reserved", "ambitious", "meticulous", "cheerful", "demanding", "modest"};
  return kList;
}

const std::vector<std::string_view>& industries() {
  static const std::vector<std::string_view> kList = {
      "shipbuilding",     "wool weaving",  "glassmaking", "fishing",    "coal mining",
      "printing",         "wine making",   "clockmaking", "tanning",    "salt production",
      "rail engineering", "paper milling", "ceramics",    "tea trading"};
  return kList;
}

const std::vector<std::string_view>& landmarks() {
  static const std::vector<std::string_view> kList = {
      "a covered market",      "an old stone bridge",       "a cathedral with two towers",
      "a lighthouse",          "a botanical garden",        "a ruined castle",
      "an opera house",        "a long seafront promenade", "a clock tower",
      "a large central square"};
  return kList;
}

const std::vector<std::string_view>& themes() {
  static const std::vector<std::string_view> kList = {"memory and exile",
                                                      "family loyalty",
                                                      "ambition and its price",
                                                      "a long friendship",
                                                      "life in a small town",
                                                      "the end of an empire",
                                                      "first love",
                                                      "grief",
                                                      "a journey home",
                                                      "the sea",
                                                      "childhood",
                                                      "betrayal"};
  return kList;
}

const std::vector<std::string_view>& directions() {
  static const std::vector<std::string_view> kList = {"north",      "south",      "east",
                                                      "west",       "north-east", "north-west",
                                                      "south-east", "south-west", "centre"};
  return kList;
}

const std::vector<std::string_view>& awards() {
  static const std::vector<std::string_view> kList = {"Prize", "Medal", "Award"};
  return kList;
}

namespace {
bool contains(const std::vector<std::string_view>& list, std::string_view word) {
  for (auto w : list)
    if (w == word) return true;
  return false;
}

// Per organisation type, the closing words of its "{X} Word" / "The {X} Word" patterns: any of
// them can replace another without changing what kind of organisation the name suggests.
const std::vector<std::vector<std::string_view>>& org_closing_words() {
  static const std::vector<std::vector<std::string_view>> kList = [] {
    std::vector<std::vector<std::string_view>> out;
    for (const auto& t : org_types()) {
      std::vector<std::string_view> words;
      for (auto p : t.patterns) {
        if (p.substr(0, 4) == "The ") p.remove_prefix(4);
        if (p.substr(0, 4) != "{X} " || p.find(' ', 4) != std::string_view::npos) continue;
        if (!contains(words, p.substr(4))) words.push_back(p.substr(4));
      }
      out.push_back(std::move(words));
    }
    return out;
  }();
  return kList;
}
}  // namespace

const std::vector<std::string_view>* title_siblings(std::string_view word) {
  if (contains(title_adjectives(), word)) return &title_adjectives();
  if (contains(title_nouns(), word)) return &title_nouns();
  return nullptr;
}

const std::vector<std::string_view>* org_closing_siblings(std::string_view word) {
  for (const auto& words : org_closing_words())
    if (words.size() > 1 && contains(words, word)) return &words;
  return nullptr;
}

}  // namespace strata::env::vocab
