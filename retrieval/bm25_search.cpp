#include "retrieval/bm25_search.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "retrieval/impl/codec.h"

namespace strata::retrieval {

void PostingCursor::open(const PostingsView& view, const format::TermRecord& record) {
  df_ = record.df;
  nblocks_ = format::num_blocks(df_);
  const uint64_t headers_end =
      record.postings + static_cast<uint64_t>(nblocks_) * sizeof(format::BlockHeader);
  STRATA_CHECK(df_ > 0 && record.postings % 4 == 0 && headers_end <= view.size,
               "corrupt index: a term's postings lie outside postings.bin");
  headers_ = reinterpret_cast<const format::BlockHeader*>(view.data + record.postings);
  data_ = view.data + headers_end;
  limit_ = view.data + view.size - format::kPostingsPadding;
  num_docs_ = view.num_docs;
  shallow_ = 0;
  decode(0);
}

void PostingCursor::decode(uint32_t block) {
  block_ = block;
  pos_ = 0;
  count_ = block + 1 < nblocks_ ? format::kBlockSize : df_ - block * format::kBlockSize;
  const format::BlockHeader& h = headers_[block];
  const uint8_t* p = data_ + h.data;
  STRATA_CHECK(h.last_doc < num_docs_ && p + 2 <= limit_, "corrupt index: a posting block lies outside postings.bin");
  const uint32_t gap_bits = p[0];
  tf_bits_ = p[1];
  tf_data_ = p + 2 + codec::packed_bytes(count_, gap_bits);
  STRATA_CHECK(gap_bits <= 32 && tf_bits_ <= 32 &&
                   tf_data_ + codec::packed_bytes(count_, tf_bits_) <= limit_,
               "corrupt index: bad posting block in postings.bin");
  codec::unpack(p + 2, count_, gap_bits, docs_);
  uint32_t prev = block == 0 ? kEnd : headers_[block - 1].last_doc;  // kEnd + 1 wraps to 0
  for (uint32_t i = 0; i < count_; ++i) {
    prev = prev + 1 + docs_[i];
    docs_[i] = prev;
  }
  STRATA_CHECK(prev == h.last_doc, "corrupt index: posting block disagrees with its header");
  tfs_ready_ = false;
  doc_ = docs_[0];
}

void PostingCursor::decode_tfs() {
  codec::unpack(tf_data_, count_, tf_bits_, tfs_);
  for (uint32_t i = 0; i < count_; ++i) ++tfs_[i];
  tfs_ready_ = true;
}

void PostingCursor::advance(uint32_t target) {
  if (doc_ >= target) return;
  if (target > headers_[block_].last_doc) {
    uint32_t b = block_ + 1;
    while (b < nblocks_ && headers_[b].last_doc < target) ++b;
    if (b == nblocks_) {
      doc_ = kEnd;
      return;
    }
    decode(b);
  }
  while (docs_[pos_] < target) ++pos_;
  doc_ = docs_[pos_];
}

float PostingCursor::shallow_max(uint32_t target) {
  if (shallow_ < block_) shallow_ = block_;
  while (shallow_ < nblocks_ && headers_[shallow_].last_doc < target) ++shallow_;
  return shallow_ < nblocks_ ? headers_[shallow_].max_tf_part : 0.0f;
}

uint32_t PostingCursor::best_block() const {
  uint32_t best = 0;
  for (uint32_t b = 1; b < nblocks_; ++b)
    if (headers_[b].max_tf_part > headers_[best].max_tf_part) best = b;
  return best;
}

void PostingCursor::append_block(uint32_t block, std::vector<uint32_t>& out) {
  decode(block);
  out.insert(out.end(), docs_, docs_ + count_);
}

namespace {

// Heap order: the worst hit on top.
bool heap_less(const Hit& a, const Hit& b) { return better(a, b); }

std::vector<Hit> sorted_hits(std::vector<Hit>& heap) {
  std::vector<Hit> out(heap.begin(), heap.end());
  std::sort(out.begin(), out.end(), better);
  return out;
}

}  // namespace

namespace {

// Postings of rare lists scored up front to prime the threshold (see top_k). A list counts as
// rare up to kPrimeMaxDf postings and 1/256 of the collection (in a small collection every
// list is short and priming would only repeat the main pass); best blocks are taken from lists
// of at least kPrimeMinBlocks blocks.
constexpr uint32_t kPrimeMaxDf = 512;
constexpr uint32_t kPrimeMinBlocks = 8;
constexpr size_t kPrimeMaxDocs = 1024;

}  // namespace

std::vector<Hit> top_k(const PostingsView& view, const std::vector<QueryTerm>& terms, int k,
                       SearchScratch& s) {
  STRATA_CHECK(k >= 0, "top-k must be >= 0, got " << k);
  const size_t n = terms.size();
  if (k == 0 || n == 0) return {};
  // Slack for the partial-score test, whose sums run in another order than the score's.
  const double inflate = 1.0 + 1e-6 * static_cast<double>(n + 4);

  // Lists sorted by ascending upper bound; position[j] = sorted slot of query term j.
  s.order.resize(n);
  for (uint32_t j = 0; j < n; ++j) s.order[j] = j;
  auto upper = [&](uint32_t j) { return terms[j].weight * terms[j].record->max_tf_part; };
  std::sort(s.order.begin(), s.order.end(), [&](uint32_t a, uint32_t b) {
    return upper(a) < upper(b) || (upper(a) == upper(b) && a < b);
  });
  s.cursors.resize(n);
  s.weights.resize(n);
  s.contrib.assign(n, 0.0f);
  s.block_max.resize(n);
  s.bounds.resize(n + 1);
  s.block_bounds.resize(n + 1);
  s.position.resize(n);
  for (uint32_t i = 0; i < n; ++i) {
    const QueryTerm& t = terms[s.order[i]];
    s.position[s.order[i]] = i;
    s.cursors[i].open(view, *t.record);
    s.weights[i] = t.weight;
  }
  // bounds[e] bounds the score of a document found only in lists 0..e-1. Like every bound
  // below that is compared with the threshold as is, it is summed in float in query-term order,
  // exactly as a score is: float multiplication and addition are monotone, so a sum of
  // per-term maxima can never round below the score it bounds, and no slack is needed (which
  // matters when many documents tie with the threshold).
  for (uint32_t e = 0; e <= n; ++e) {
    float sum = 0;
    for (uint32_t j = 0; j < n; ++j)
      if (s.position[j] < e) sum += upper(j);
    s.bounds[e] = sum;
  }
  PostingCursor* cur = s.cursors.data();
  const float* w = s.weights.data();
  float* c = s.contrib.data();
  float* bm = s.block_max.data();
  const uint32_t* position = s.position.data();
  const float* norms = view.norms;
  const size_t kk = static_cast<size_t>(k);
  std::vector<Hit>& heap = s.heap;
  heap.clear();

  // Exact score of d, summed in query-term order; cursors must be at or before d.
  auto score_of = [&](PostingCursor* cs, uint32_t d) {
    const float norm = norms[d];
    float score = 0;
    for (size_t j = 0; j < n; ++j) {
      PostingCursor& pc = cs[position[j]];
      pc.advance(d);
      if (pc.doc() == d) score += w[position[j]] * format::tf_part(pc.tf(), norm);
    }
    return score;
  };
  auto offer = [&](const Hit& hit) {
    if (heap.size() < kk) {
      heap.push_back(hit);
      std::push_heap(heap.begin(), heap.end(), heap_less);
      return true;
    }
    if (!better(hit, heap.front())) return false;
    std::pop_heap(heap.begin(), heap.end(), heap_less);
    heap.back() = hit;
    std::push_heap(heap.begin(), heap.end(), heap_less);
    return true;
  };

  // Priming: documents of the rare lists (a name in a question) often hold the top hits, but
  // document-at-a-time order meets them late and the threshold stays low meanwhile. Score them
  // exactly first (on separate cursors); the main pass then skips them.
  s.primed.clear();
  const uint32_t rare_df = std::min(kPrimeMaxDf, view.num_docs / 256);
  for (size_t i = 0; i < n; ++i) {
    const format::TermRecord& r = *terms[s.order[i]].record;
    if (r.df > rare_df || s.primed.size() + r.df > kPrimeMaxDocs) continue;
    PostingCursor& pc = s.probe_one;
    pc.open(view, r);
    for (; pc.doc() != PostingCursor::kEnd; pc.next()) s.primed.push_back(pc.doc());
  }
  if (s.primed.size() < kk) {
    // Too few to fill the heap: add the best block of each other list, strongest first.
    for (size_t i = n; i-- > 0;) {
      const format::TermRecord& r = *terms[s.order[i]].record;
      if (r.df <= rare_df || format::num_blocks(r.df) < kPrimeMinBlocks) continue;
      if (s.primed.size() + format::kBlockSize > kPrimeMaxDocs) break;
      PostingCursor& pc = s.probe_one;
      pc.open(view, r);
      pc.append_block(pc.best_block(), s.primed);
    }
  }
  const bool primed = !s.primed.empty();
  if (primed) {
    std::sort(s.primed.begin(), s.primed.end());
    s.primed.erase(std::unique(s.primed.begin(), s.primed.end()), s.primed.end());
    s.probes.resize(n);
    for (size_t i = 0; i < n; ++i) s.probes[i].open(view, *terms[s.order[i]].record);
    for (uint32_t d : s.primed) offer({d, score_of(s.probes.data(), d)});
  }
  size_t next_primed = 0;

  // Threshold state: a document that scores at most `threshold` can still displace the worst
  // hit on a tie when its number is smaller than `worst_doc`.
  float threshold = -1.0f;
  uint32_t worst_doc = 0;
  size_t essential = 0;  // lists [0, essential) are non-essential
  auto update_threshold = [&] {
    if (heap.size() < kk) return;
    threshold = heap.front().score;
    worst_doc = heap.front().doc;
    // Primed hits may have larger numbers than documents still to come, so ties need care:
    // a list goes non-essential only on a strict bound then.
    while (essential < n && (primed ? s.bounds[essential + 1] < threshold
                                    : s.bounds[essential + 1] <= threshold))
      ++essential;
  };
  // True when no document from `first` on with score at most `bound` can enter the heap.
  auto hopeless = [&](float bound, uint32_t first) {
    return bound < threshold || (bound == threshold && first > worst_doc);
  };
  update_threshold();

  for (;;) {
    uint32_t d = PostingCursor::kEnd;
    for (size_t i = essential; i < n; ++i) d = std::min(d, cur[i].doc());
    if (d == PostingCursor::kEnd) break;
    const bool full = heap.size() == kk;
    __builtin_prefetch(norms + d);  // a likely cache miss; the bounds below hide part of it

    if (primed) {
      while (next_primed < s.primed.size() && s.primed[next_primed] < d) ++next_primed;
      if (next_primed < s.primed.size() && s.primed[next_primed] == d) {
        for (size_t i = essential; i < n; ++i)
          if (cur[i].doc() == d) cur[i].next();
        continue;
      }
    }

    if (full) {
      // Two block-max tests. Window [d, end]: `end` is the first place where a list's block
      // that could hold d ends, so each list contributes at most its block maximum to any
      // document of the window, and nothing when its next posting lies past `end` (a cursor
      // at or after d sits on its first posting >= d); a window that cannot beat the threshold
      // is skipped whole. Document d: the lists positioned on d, plus the non-essential lists
      // not yet moved up to d.
      uint32_t end = PostingCursor::kEnd;
      for (size_t i = 0; i < n; ++i) {
        bm[i] = w[i] * cur[i].shallow_max(d);
        end = std::min(end, cur[i].shallow_last());
      }
      float window = 0, at_d = 0;
      for (size_t j = 0; j < n; ++j) {
        const size_t i = position[j];
        const uint32_t at = cur[i].doc();
        if (at <= end) window += bm[i];
        if (at <= d) at_d += bm[i];  // at < d: a non-essential list not yet moved up to d
      }
      if (hopeless(window, d)) {
        if (end == PostingCursor::kEnd) break;
        for (size_t i = essential; i < n; ++i) cur[i].advance(end + 1);
        continue;
      }
      if (hopeless(at_d, d)) {
        for (size_t i = essential; i < n; ++i)
          if (cur[i].doc() == d) cur[i].next();
        continue;
      }
      s.block_bounds[0] = 0;
      for (size_t i = 0; i < essential; ++i) s.block_bounds[i + 1] = s.block_bounds[i] + bm[i];
    }

    std::fill(c, c + n, 0.0f);
    double partial = 0;
    const float norm = norms[d];
    for (size_t i = essential; i < n; ++i) {
      if (cur[i].doc() != d) continue;
      c[i] = w[i] * format::tf_part(cur[i].tf(), norm);
      partial += c[i];
      cur[i].next();
    }
    bool pruned = false;
    for (size_t i = essential; i-- > 0;) {
      if (full) {
        const double bound = (partial + s.block_bounds[i + 1]) * inflate;
        if (bound < threshold || (bound <= threshold && d > worst_doc)) {
          pruned = true;
          break;
        }
      }
      cur[i].advance(d);
      if (cur[i].doc() == d) {
        c[i] = w[i] * format::tf_part(cur[i].tf(), norm);
        partial += c[i];
      }
    }
    if (pruned) continue;

    float score = 0;
    for (size_t j = 0; j < n; ++j) score += c[position[j]];
    if (offer({d, score})) update_threshold();
  }
  return sorted_hits(heap);
}

std::vector<Hit> top_k_exhaustive(const PostingsView& view, const std::vector<QueryTerm>& terms,
                                  int k, SearchScratch& s) {
  STRATA_CHECK(k >= 0, "top-k must be >= 0, got " << k);
  if (k == 0 || terms.empty()) return {};
  if (s.acc.size() != view.num_docs) s.acc.assign(view.num_docs, 0.0f);
  s.touched.clear();
  PostingCursor cursor;
  for (const QueryTerm& t : terms) {
    cursor.open(view, *t.record);
    for (; cursor.doc() != PostingCursor::kEnd; cursor.next()) {
      const uint32_t d = cursor.doc();
      STRATA_CHECK(d < view.num_docs, "corrupt index: document " << d << " out of range");
      if (s.acc[d] == 0.0f) s.touched.push_back(d);
      s.acc[d] += t.weight * format::tf_part(cursor.tf(), view.norms[d]);
    }
  }
  std::vector<Hit> hits;
  hits.reserve(s.touched.size());
  for (uint32_t d : s.touched) {
    hits.push_back({d, s.acc[d]});
    s.acc[d] = 0.0f;
  }
  const size_t kk = std::min(hits.size(), static_cast<size_t>(k));
  std::partial_sort(hits.begin(), hits.begin() + kk, hits.end(), better);
  hits.resize(kk);
  return hits;
}

}  // namespace strata::retrieval
