// Fixed word lists of the QA world: occupations, organisation and work types, genres, and the
// English words that titles and filler sentences are built from. Indices into these tables are
// stored in Entity::type / Entity::attr, so the tables only ever grow at the end.
#pragma once

#include <string_view>
#include <vector>

namespace strata::env::vocab {

struct Occupation {
  std::string_view title;  // "physicist" (what an occupation question answers)
  std::string_view field;  // "physics" (filler sentences)
  int creates_work = -1;   // index in work_types() this occupation creates, or -1
};

struct OrgType {
  std::string_view noun;                     // "bank": "the bank that employs ..."
  std::vector<std::string_view> patterns;    // name patterns; {X} is an invented word
  std::vector<std::string_view> activities;  // "lends money to farmers": filler
};

struct WorkType {
  std::string_view noun;          // "novel"
  std::string_view creator_noun;  // "author": "the author of the novel ..."
  std::string_view made_by;       // "written by"
  std::string_view released;      // "published"
  std::string_view who_question;  // "Who wrote"
  std::vector<std::string_view> genres;
};

const std::vector<Occupation>& occupations();
const std::vector<OrgType>& org_types();
const std::vector<WorkType>& work_types();

// Words for titles ("The Silent Harbour"); a look-alike may swap one for another of its list.
const std::vector<std::string_view>& title_adjectives();
const std::vector<std::string_view>& title_nouns();
// Patterns for work titles; {A} adjective, {N} noun, {X} invented word.
const std::vector<std::string_view>& title_patterns();

// Filler vocabulary.
const std::vector<std::string_view>& traits();      // "patient", "restless"
const std::vector<std::string_view>& industries();  // "shipbuilding"
const std::vector<std::string_view>& landmarks();   // "a covered market"
const std::vector<std::string_view>& themes();      // "memory and exile"
const std::vector<std::string_view>& directions();  // "north", "south-east"
const std::vector<std::string_view>& awards();      // "Prize", "Medal"

// Look-alike helpers: the list a title word belongs to (adjectives or nouns), and the
// interchangeable closing words of organisation names ("Records", "Music", "Sound") that `word`
// is one of; nullptr when there is none.
const std::vector<std::string_view>* title_siblings(std::string_view word);
const std::vector<std::string_view>* org_closing_siblings(std::string_view word);

}  // namespace strata::env::vocab
