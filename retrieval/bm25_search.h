// Query evaluation over the compressed postings of a BM25 index (layout in bm25_format.h).
//
// top_k() is an exact document-at-a-time MaxScore with block-max bounds: query terms are ordered
// by their score upper bound; once the k-th best score (the threshold) exceeds the summed bounds
// of the weakest terms, those terms only confirm candidates that the others propose, and a
// candidate is dropped as soon as its partial score plus the block maxima of the lists still to
// read cannot beat the threshold. Window skipping: when the block maxima of every list over a
// stretch of documents cannot beat the threshold, the whole stretch is passed over. Priming: the
// documents of rare lists (<= 512 postings, a name in a question, say), and when those are fewer
// than k the best block of each other list, are scored exactly before the main pass, so the
// threshold starts high. The result equals top_k_exhaustive() (which scores every
// posting, term at a time): same documents, bit-identical scores, ties broken by smaller doc.
//
// Bound scan: when the query has terms with an impact array (the very common words of the
// collection, format in bm25_format.h) and MaxScore would still read many postings (questions
// whose rare names match fewer than k passages, so that passages matching only common words set
// the threshold, which then stays low against those words' bounds), top_k bounds every
// document's score at once instead:
//   - the impact bytes of those terms, times per-query integer weights (rounded up), are summed
//     with AVX-512 (plain loops on other CPUs) into a 16-bit bound per document, chunk by chunk
//     of 256 documents; the other lists add each posting's contribution, rounded up, from a
//     table by (tf, min(length, 255)) that stays in cache;
//   - chunks are then taken by their largest bound, and within a group of chunks the documents
//     by bound, best first; a document's bound is first refined (the rounding of the weights
//     taken back out, from its impact bytes), and only if that still reaches the running
//     threshold is it scored exactly, its postings found through the block headers. The scan
//     ends when no chunk's bound reaches the threshold.
// Exact like the main pass (every bound is at or above the score; the comparison with the
// threshold keeps a relative slack for float rounding). Its cost is fixed, about a byte read per
// document per common term plus the other lists' postings, where MaxScore's grows with the
// common lists. The choice is by a cost estimate in postings (kAuto), or forced for tests and
// benchmarks (PostingsView::bound_scan); when the rare lists cannot fill the heap, the scan
// starts straight after them, without the best-block priming.
//
// Bit-identical scores: a document's score is summed in the query's term order (first
// appearance), whatever order the algorithm visited the lists in. Upper bounds are summed the
// same way, so rounding can never push a bound below the score it bounds (IEEE addition and
// multiplication are monotone); the one test that sums in another order gets a few ulps of
// slack.
#pragma once

#include <cstdint>
#include <vector>

#include "retrieval/bm25_format.h"
#include "retrieval/searcher.h"

namespace strata::retrieval {

// When top_k runs the bound scan: kAuto when its estimated cost is below MaxScore's.
enum class BoundScan { kAuto, kOff, kAlways };

struct PostingsView {
  const uint8_t* data = nullptr;  // postings.bin, header included
  size_t size = 0;                // bytes, the trailing padding included
  const float* norms = nullptr;   // per document: k1 * (1 - b + b * dl / avgdl)
  uint32_t num_docs = 0;
  uint32_t impact_stride = 0;  // bytes of one impact array (format::impact_stride)
  // For the bound scan: per document min(length, 255), and the norm of each such length (a
  // lower bound of the norms of the documents of length 255 and more).
  const uint8_t* length_class = nullptr;
  const float* class_norms = nullptr;
  BoundScan bound_scan = BoundScan::kAuto;
};

// One distinct query term, in query order.
struct QueryTerm {
  const format::TermRecord* record = nullptr;
  float weight = 0;  // qtf * idf
  const uint8_t* impacts = nullptr;  // its impact array, when the index has one
};

// Cursor over one term's postings; decodes one 128-document block at a time.
class PostingCursor {
 public:
  static constexpr uint32_t kEnd = 0xFFFFFFFFu;

  // Throws strata::Error when the term's data lies outside postings.bin.
  void open(const PostingsView& view, const format::TermRecord& record);
  uint32_t doc() const { return doc_; }
  uint32_t tf() {
    if (!tfs_ready_) decode_tfs();
    return tfs_[pos_];
  }
  void next() {
    if (++pos_ < count_) {
      doc_ = docs_[pos_];
    } else if (block_ + 1 < nblocks_) {
      decode(block_ + 1);
    } else {
      doc_ = kEnd;
    }
  }
  // Moves to the first document >= target.
  void advance(uint32_t target);
  // Moves to the first document >= target, backwards too (binary search of the block headers).
  void seek(uint32_t target);
  // Calls f(doc, tf) for each posting from the current one up to (not including) document
  // `end`, and moves to the first posting at or past it.
  template <class F>
  void consume_below(uint32_t end, F&& f) {
    while (doc_ < end) {
      if (!tfs_ready_) decode_tfs();
      uint32_t i = pos_;
      const uint32_t count = count_;
      while (i < count && docs_[i] < end) {
        f(docs_[i], tfs_[i]);
        ++i;
      }
      if (i < count) {
        pos_ = i;
        doc_ = docs_[i];
        return;
      }
      if (block_ + 1 < nblocks_) {
        decode(block_ + 1);
      } else {
        pos_ = count;
        doc_ = kEnd;
      }
    }
  }
  // The largest tf_part of the block that would hold `target` (0 past the end); never decodes.
  float shallow_max(uint32_t target);
  // The block with the largest maximum, and appending a block's documents to `out` (moves the
  // cursor to that block). For priming the threshold.
  uint32_t best_block() const;
  void append_block(uint32_t block, std::vector<uint32_t>& out);
  // The last document of that block (kEnd past the end); call after shallow_max(target).
  uint32_t shallow_last() const {
    return shallow_ < nblocks_ ? headers_[shallow_].last_doc : kEnd;
  }

 private:
  void decode(uint32_t block);
  void decode_tfs();

  const format::BlockHeader* headers_ = nullptr;
  const uint8_t* data_ = nullptr;
  const uint8_t* limit_ = nullptr;  // end of the postings data
  uint32_t df_ = 0, nblocks_ = 0, num_docs_ = 0;
  uint32_t block_ = 0, shallow_ = 0, pos_ = 0, count_ = 0;
  uint32_t doc_ = kEnd;
  bool tfs_ready_ = false;
  const uint8_t* tf_data_ = nullptr;
  uint32_t tf_bits_ = 0;
  uint32_t docs_[format::kBlockSize];
  uint32_t tfs_[format::kBlockSize];
};

// Reusable per-thread buffers.
struct SearchScratch {
  std::vector<PostingCursor> cursors;
  std::vector<float> weights, contrib, block_max, bounds;
  std::vector<double> block_bounds;
  std::vector<uint32_t> order, position;
  std::vector<Hit> heap;
  std::vector<uint32_t> primed;       // documents scored before the main pass
  std::vector<PostingCursor> probes;  // cursors for priming
  PostingCursor probe_one;
  std::vector<uint8_t> fully_primed;  // per sorted list: all its documents were primed
  std::vector<uint16_t> bound;        // bound scan: per document
  std::vector<uint16_t> chunk_max;    // bound scan: per chunk of 256 documents
  std::vector<uint32_t> chunk_order, bucket_start;
  std::vector<uint32_t> order_sparse;        // bound scan: the lists without an impact array
  std::vector<uint64_t> candidates;          // bound scan: bound << 32 | ~doc
  std::vector<uint16_t> contribution_table;  // bound scan: per such list, by (tf, length)
  std::vector<float> acc;         // exhaustive: per-document accumulator
  std::vector<uint32_t> touched;  // exhaustive: documents with a non-zero accumulator
};

std::vector<Hit> top_k(const PostingsView& view, const std::vector<QueryTerm>& terms, int k,
                       SearchScratch& scratch);
std::vector<Hit> top_k_exhaustive(const PostingsView& view, const std::vector<QueryTerm>& terms,
                                  int k, SearchScratch& scratch);

// The bound scan sums impact arrays with AVX-512 where the CPU has it (checked at run time),
// else with plain loops; tests turn the SIMD path off to check the other. Process-wide.
void set_bound_scan_simd(bool on);

// Hit order: higher score first, then smaller document.
inline bool better(const Hit& a, const Hit& b) {
  return a.score > b.score || (a.score == b.score && a.doc < b.doc);
}

}  // namespace strata::retrieval
