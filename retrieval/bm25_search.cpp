#include "retrieval/bm25_search.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define STRATA_BM25_AVX512 1
#endif

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

void PostingCursor::seek(uint32_t target) {
  const bool in_block = block_ < nblocks_ && target <= headers_[block_].last_doc &&
                        (block_ == 0 || target > headers_[block_ - 1].last_doc);
  if (!in_block) {
    uint32_t lo = 0, hi = nblocks_;  // the first block whose last document is >= target
    while (lo < hi) {
      const uint32_t mid = lo + (hi - lo) / 2;
      if (headers_[mid].last_doc < target) {
        lo = mid + 1;
      } else {
        hi = mid;
      }
    }
    if (lo == nblocks_) {
      doc_ = kEnd;
      return;
    }
    decode(lo);
  }
  pos_ = static_cast<uint32_t>(std::lower_bound(docs_, docs_ + count_, target) - docs_);
  doc_ = docs_[pos_];  // the block's last document is >= target, so pos_ < count_
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

// Adds a hit to the heap of the best kk; true when it entered.
bool offer_hit(std::vector<Hit>& heap, size_t kk, const Hit& hit) {
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
}

// ---- bound scan (see bm25_search.h) ----------------------------------------------------------

constexpr size_t kScanMaxTerms = 32;   // impact arrays one scan sums
constexpr double kScanBudget = 60000;  // the largest bound, in units (leaves room to round up)
constexpr double kScanSlack = 1e-6;    // relative, for float rounding in the bounds
// Relative: a float score of n terms is within n * 2^-24 of the exact sum of its contributions.
constexpr double kScanThresholdSlack = 1e-5;
constexpr double kScanThresholdSlackPerTerm = 1e-7;
constexpr uint32_t kScanTfTable = 4;  // contributions tabled for tf 1..4
// Cost model for kAuto, in postings read by MaxScore: the scan reads one byte per document per
// impact array, kScanBytesPerPosting of which cost about what one posting does in the main
// pass, plus every posting of the lists without an array, plus a fixed part. Fitted on the 1M
// world's questions (docs/BENCHMARKS.md): it picks the faster path for all but a few.
constexpr uint64_t kScanBytesPerPosting = 48;
constexpr uint64_t kScanFixedShare = 32;     // num_docs / this
constexpr uint64_t kScanProbePostings = 64;  // main pass: postings of other lists per candidate

std::atomic<bool> g_scan_simd{true};

// One chunk of 256 documents: bound[i] = min(65535, sum_t mult[t] * arrays[t][base + i]);
// returns the largest.
uint16_t sum_chunk_scalar(const uint8_t* const* arrays, const uint16_t* mult, size_t m,
                          uint32_t base, uint16_t* bound) {
  uint16_t best = 0;
  for (uint32_t i = 0; i < format::kImpactChunk; ++i) {
    uint32_t sum = 0;
    for (size_t t = 0; t < m; ++t) sum += uint32_t{mult[t]} * arrays[t][base + i];
    bound[i] = static_cast<uint16_t>(std::min<uint32_t>(sum, 0xFFFF));
    best = std::max(best, bound[i]);
  }
  return best;
}

#ifdef STRATA_BM25_AVX512
// GCC 12's AVX-512 headers trip -Wuninitialized on their own _mm512_undefined_* placeholders
// (a false positive, GCC bug 105593).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
__attribute__((target("avx512f,avx512bw"))) uint16_t sum_chunk_avx512(const uint8_t* const* arrays,
                                                                      const uint16_t* mult,
                                                                      size_t m, uint32_t base,
                                                                      uint16_t* bound) {
  __m512i mx = _mm512_setzero_si512();
  for (uint32_t g = 0; g < format::kImpactChunk; g += 64) {
    __m512i lo = _mm512_setzero_si512(), hi = _mm512_setzero_si512();
    for (size_t t = 0; t < m; ++t) {
      const uint8_t* a = arrays[t] + base + g;
      const __m512i mv = _mm512_set1_epi16(static_cast<short>(mult[t]));
      const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a));
      const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + 32));
      lo = _mm512_adds_epu16(lo, _mm512_mullo_epi16(_mm512_cvtepu8_epi16(b0), mv));
      hi = _mm512_adds_epu16(hi, _mm512_mullo_epi16(_mm512_cvtepu8_epi16(b1), mv));
    }
    _mm512_storeu_si512(bound + g, lo);
    _mm512_storeu_si512(bound + g + 32, hi);
    mx = _mm512_max_epu16(mx, _mm512_max_epu16(lo, hi));
  }
  // Horizontal maximum, over the 16-bit halves of 32-bit lanes.
  const __m512i halves =
      _mm512_max_epu32(_mm512_and_si512(mx, _mm512_set1_epi32(0xFFFF)), _mm512_srli_epi32(mx, 16));
  return static_cast<uint16_t>(_mm512_reduce_max_epu32(halves));
}
#pragma GCC diagnostic pop

bool have_avx512() {
  static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
  return ok;
}
#endif

// The bound scan. On entry the heap holds the primed documents (sorted in s.primed) and
// s.fully_primed marks the lists all of whose documents were primed; on return it holds the
// exact top kk.
void bound_scan(const PostingsView& view, const std::vector<QueryTerm>& terms, size_t kk,
                SearchScratch& s) {
  const size_t n = terms.size();
  const uint32_t stride = view.impact_stride;
  const uint32_t nchunks = stride / format::kImpactChunk;
  const float* norms = view.norms;
  std::vector<Hit>& heap = s.heap;

  // Units: a bound of v stands for v * unit or less. Each term's share is rounded up.
  double total = 0;
  for (size_t j = 0; j < n; ++j)
    if (terms[j].impacts != nullptr || !s.fully_primed[s.position[j]])
      total += static_cast<double>(terms[j].weight) * terms[j].record->max_tf_part;
  const double unit = total * (1 + kScanSlack) / kScanBudget;
  const uint8_t* arrays[kScanMaxTerms];
  uint16_t mult[kScanMaxTerms];
  double level_units[kScanMaxTerms];  // each array's weight per impact level, in units
  size_t m = 0;
  for (size_t j = 0; j < n; ++j) {
    if (terms[j].impacts == nullptr) continue;
    arrays[m] = terms[j].impacts;
    const double level = static_cast<double>(terms[j].weight) * terms[j].record->max_tf_part / 255;
    level_units[m] = level * (1 + kScanSlack) / unit;
    mult[m] = static_cast<uint16_t>(std::max(1.0, std::ceil(level_units[m])));
    ++m;
  }
  s.bound.resize(stride);
  s.chunk_max.resize(nchunks);
  uint16_t* bound = s.bound.data();
  uint16_t* chunk_max = s.chunk_max.data();
  auto sum_chunk = sum_chunk_scalar;
#ifdef STRATA_BM25_AVX512
  if (g_scan_simd.load(std::memory_order_relaxed) && have_avx512()) sum_chunk = sum_chunk_avx512;
#endif
  // The lists without an array add their postings' contributions, rounded up:
  // (uint32_t)(c * per_unit) + 1 >= c / unit, per_unit carrying 10x the slack of float rounding.
  // Chunk by chunk, so that the bounds being added to stay in L1 and the length classes are
  // read in order.
  const float per_unit = static_cast<float>((1 + 10 * kScanSlack) / unit);
  size_t nsparse = 0;
  s.order_sparse.resize(n);
  for (size_t j = 0; j < n; ++j) {
    if (terms[j].impacts != nullptr || s.fully_primed[s.position[j]]) continue;
    s.order_sparse[nsparse++] = s.position[j];  // the main pass's cursor, still at its start
  }
  // Their contributions by (tf, length class) for tf <= kScanTfTable, so that a posting costs
  // a byte of length_class (1 MiB, cache-resident) rather than a float norm (4 MiB).
  const uint8_t* length_class = view.length_class;
  const float* class_norms = view.class_norms;
  s.contribution_table.resize(nsparse * kScanTfTable * 256);
  for (size_t x = 0; x < nsparse; ++x) {
    const float w = s.weights[s.order_sparse[x]];
    uint16_t* table = s.contribution_table.data() + x * kScanTfTable * 256;
    for (uint32_t tf = 1; tf <= kScanTfTable; ++tf)
      for (uint32_t c = 0; c < 256; ++c) {
        const float contribution = w * format::tf_part(tf, class_norms[c]);
        table[(tf - 1) * 256 + c] = static_cast<uint16_t>(
            std::min<uint32_t>(0xFFFF, static_cast<uint32_t>(contribution * per_unit) + 1));
      }
  }
  PostingCursor* cur = s.cursors.data();
  for (uint32_t c = 0; c < nchunks; ++c) {
    const uint32_t base = c * format::kImpactChunk, end = base + format::kImpactChunk;
    uint32_t best = sum_chunk(arrays, mult, m, base, bound + base);
    for (size_t x = 0; x < nsparse; ++x) {
      PostingCursor& pc = cur[s.order_sparse[x]];
      const uint16_t* table = s.contribution_table.data() + x * kScanTfTable * 256;
      const float w = s.weights[s.order_sparse[x]];
      pc.consume_below(end, [&](uint32_t d, uint32_t tf) {
        uint32_t add;
        if (tf <= kScanTfTable) {
          add = table[(tf - 1) * 256 + length_class[d]];
        } else {
          const float contribution = w * format::tf_part(tf, class_norms[length_class[d]]);
          add = static_cast<uint32_t>(std::min(contribution * per_unit, 65535.0f)) + 1;
        }
        const uint32_t v = std::min<uint32_t>(bound[d] + add, 0xFFFF);
        bound[d] = static_cast<uint16_t>(v);
        best = std::max(best, v);
      });
    }
    chunk_max[c] = static_cast<uint16_t>(best);
  }
  // Chunks grouped by the top byte of their largest bound, bucket 0 holding the largest.
  s.bucket_start.assign(258, 0);
  for (uint32_t c = 0; c < nchunks; ++c) ++s.bucket_start[255 - (chunk_max[c] >> 8) + 2];
  for (size_t i = 2; i < 258; ++i) s.bucket_start[i] += s.bucket_start[i - 1];
  s.chunk_order.resize(nchunks);
  for (uint32_t c = 0; c < nchunks; ++c)
    s.chunk_order[s.bucket_start[255 - (chunk_max[c] >> 8) + 1]++] = c;
  // Now bucket i spans chunk_order[bucket_start[i], bucket_start[i + 1]).

  // A document can enter the heap only if its bound reaches need_real = threshold * (1 -
  // slack) / unit (its score is at most bound * unit * (1 + float rounding)). `need` is that
  // rounded down, for the 16-bit bounds.
  const double slack = kScanThresholdSlack + kScanThresholdSlackPerTerm * static_cast<double>(n);
  double need_real = 0;
  uint32_t need = 1;  // any matching document (bound >= 1)
  auto update_need = [&] {
    if (heap.size() < kk) return;
    need_real = heap.front().score * (1 - slack) / unit;
    need = static_cast<uint32_t>(std::clamp(std::floor(need_real), 1.0, 65536.0));
  };
  update_need();
  // The multipliers were rounded up; refined(d) takes that back out of d's bound (it stays
  // above the exact bound: each term's impact byte times its unrounded weight).
  double excess[kScanMaxTerms];
  for (size_t t = 0; t < m; ++t) excess[t] = mult[t] - level_units[t];
  auto refined = [&](uint32_t d) {
    double b = bound[d];
    if (b >= 0xFFFF) return b;  // saturated: no refinement
    for (size_t t = 0; t < m; ++t) b -= excess[t] * arrays[t][d];
    return b;
  };

  s.probes.resize(n);
  for (size_t i = 0; i < n; ++i) s.probes[i].open(view, *terms[s.order[i]].record);
  const uint32_t* position = s.position.data();
  const float* w = s.weights.data();
  const bool any_primed = !s.primed.empty();
  // Exact score of d, summed in query-term order; a term whose impact byte is 0 is absent.
  auto score_at = [&](uint32_t d) {
    const float norm = norms[d];
    float score = 0;
    for (size_t j = 0; j < n; ++j) {
      if (terms[j].impacts != nullptr && terms[j].impacts[d] == 0) continue;
      PostingCursor& pc = s.probes[position[j]];
      pc.seek(d);
      if (pc.doc() == d) score += w[position[j]] * format::tf_part(pc.tf(), norm);
    }
    return score;
  };
  // Bucket by bucket, the largest bounds first; within a bucket, its candidates in order of
  // their bounds, so that the threshold rises early and most candidates fall below it.
  for (uint32_t i = 0; i < 256; ++i) {
    const uint32_t first = s.bucket_start[i], last = s.bucket_start[i + 1];
    if (first == last) continue;
    if (((255 - i) << 8 | 0xFFu) < need) break;  // no bound in this bucket or after reaches it
    s.candidates.clear();
    for (uint32_t x = first; x < last; ++x) {
      const uint32_t c = s.chunk_order[x];
      if (chunk_max[c] < need) continue;
      const uint32_t end = std::min(view.num_docs, (c + 1) * format::kImpactChunk);
      for (uint32_t d = c * format::kImpactChunk; d < end; ++d)
        if (bound[d] >= need) s.candidates.push_back(uint64_t{bound[d]} << 32 | (~d & 0xFFFFFFFFu));
    }
    std::sort(s.candidates.begin(), s.candidates.end(), std::greater<uint64_t>());
    for (uint64_t cand : s.candidates) {
      if ((cand >> 32) < need) break;
      const uint32_t d = ~static_cast<uint32_t>(cand);
      if (refined(d) < need_real) continue;
      if (any_primed && std::binary_search(s.primed.begin(), s.primed.end(), d)) continue;
      if (offer_hit(heap, kk, {d, score_at(d)})) update_need();
    }
  }
}

}  // namespace

void set_bound_scan_simd(bool on) { g_scan_simd.store(on); }

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
  auto offer = [&](const Hit& hit) { return offer_hit(heap, kk, hit); };

  // Priming: documents of the rare lists (a name in a question) often hold the top hits, but
  // document-at-a-time order meets them late and the threshold stays low meanwhile. Score them
  // exactly first (on separate cursors); the main pass then skips them.
  s.primed.clear();
  s.fully_primed.assign(n, 0);
  const uint32_t rare_df = std::min(kPrimeMaxDf, view.num_docs / 256);
  for (size_t i = 0; i < n; ++i) {
    const format::TermRecord& r = *terms[s.order[i]].record;
    if (r.df > rare_df || s.primed.size() + r.df > kPrimeMaxDocs) continue;
    PostingCursor& pc = s.probe_one;
    pc.open(view, r);
    for (; pc.doc() != PostingCursor::kEnd; pc.next()) s.primed.push_back(pc.doc());
    s.fully_primed[i] = 1;
  }
  // The bound scan's cost, in postings (kScanBytesPerPosting): its arrays, the postings of the
  // lists without one, and a fixed part.
  size_t with_array = 0;
  uint64_t sparse = 0, all_postings = 0;
  for (size_t j = 0; j < n; ++j) {
    all_postings += terms[j].record->df;
    if (terms[j].impacts != nullptr) {
      ++with_array;
    } else if (!s.fully_primed[position[j]]) {
      sparse += terms[j].record->df;
    }
  }
  const bool can_scan = view.bound_scan != BoundScan::kOff && view.impact_stride > 0 &&
                        with_array > 0 && with_array <= kScanMaxTerms;
  const uint64_t scan_cost = with_array * uint64_t{view.impact_stride} / kScanBytesPerPosting +
                             sparse + view.num_docs / kScanFixedShare;
  // Too few rare documents to fill the heap: the main pass would start without a threshold and
  // read every list, so the scan goes first when it costs less; else prime with best blocks.
  const bool scan_now = can_scan && s.primed.size() < kk &&
                        (view.bound_scan == BoundScan::kAlways || all_postings > scan_cost);
  if (s.primed.size() < kk && !scan_now) {
    // Add the best block of each other list, strongest first.
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

  // The bound scan instead of the main pass, when the query has impact arrays and the scan
  // costs less than what the main pass would read now that the threshold is known.
  if (can_scan) {
    uint64_t essential_postings = 0, other_postings = 0;
    for (size_t i = 0; i < n; ++i)
      (i < essential ? other_postings : essential_postings) += terms[s.order[i]].record->df;
    // The main pass reads the essential lists and, for each candidate they propose, a block of
    // each other list: all of them, once the candidates outnumber their blocks.
    const uint64_t main_cost =
        essential_postings + std::min(other_postings, kScanProbePostings * essential_postings);
    if (scan_now || view.bound_scan == BoundScan::kAlways || main_cost > scan_cost) {
      bound_scan(view, terms, kk, s);
      return sorted_hits(heap);
    }
  }

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
