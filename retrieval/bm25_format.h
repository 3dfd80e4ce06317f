// The on-disk BM25 index: file names, binary records and the scoring formula shared by the
// builder (block maxima) and the searcher (scores), so that both compute bit-identical floats.
//
// An index is a directory:
//   manifest.json  format name and version, k1, b, analyzer, counts, average document length
//   terms.bin      header + one TermRecord per term, sorted by term bytes (binary search)
//   terms.str      the term strings, concatenated (TermRecord points into it)
//   postings.bin   header + per term: BlockHeader[ceil(df/128)] then the blocks' packed data
//   doclens.bin    header + uint32 length (in terms) per document
//   docs.idx       header + uint64 offset per document, plus one past the end, into docs.bin
//   docs.bin       header + per document: uint32 id length, id bytes, contents bytes
// Every .bin/.idx/.str file starts with a 16-byte FileHeader. Integers are little-endian.
//
// A posting block holds up to 128 documents: byte 0 = bit width of the document gaps, byte 1 =
// bit width of (tf - 1), then the gaps (doc - previous doc - 1; the first block's previous doc is
// -1, a later block's is the previous block's last doc) bit-packed LSB-first and padded to a
// byte, then the tf-1 values likewise. postings.bin ends with 8 zero bytes so that a decoder may
// always load 64 bits.
//
// Scoring is Lucene's BM25 (Lucene >= 8, as Pyserini): per query term
//   idf     = ln(1 + (N - df + 0.5) / (df + 0.5))
//   tf_part = tf / (tf + k1 * (1 - b + b * dl / avgdl))
// without Lucene < 8's (k1 + 1) numerator factor (it scales every score alike and so changes no
// ranking). A query term written twice counts twice (Lucene's BooleanQuery of SHOULD clauses):
// its weight is qtf * idf. Document lengths are exact; Lucene rounds them to one byte ("norms"),
// so scores differ from Pyserini's in the low digits.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace strata::retrieval::format {

constexpr uint32_t kVersion = 1;
constexpr char kFormatName[] = "strata-bm25";
constexpr uint32_t kBlockSize = 128;
constexpr size_t kPostingsPadding = 8;

constexpr char kManifest[] = "manifest.json";
constexpr char kTerms[] = "terms.bin";
constexpr char kTermStrings[] = "terms.str";
constexpr char kPostings[] = "postings.bin";
constexpr char kDocLens[] = "doclens.bin";
constexpr char kDocIndex[] = "docs.idx";
constexpr char kDocs[] = "docs.bin";

// Which file a header belongs to (so a file swapped for another is caught).
enum class FileKind : uint32_t {
  kTerms = 1,
  kTermStrings = 2,
  kPostings = 3,
  kDocLens = 4,
  kDocIndex = 5,
  kDocs = 6,
};

struct FileHeader {
  char magic[8];  // "STRBM25\0"
  uint32_t version;
  uint32_t kind;  // FileKind
};
static_assert(sizeof(FileHeader) == 16, "FileHeader must be 16 bytes");
constexpr char kMagic[8] = {'S', 'T', 'R', 'B', 'M', '2', '5', '\0'};

inline FileHeader make_header(FileKind kind) {
  FileHeader h;
  std::memcpy(h.magic, kMagic, sizeof(kMagic));
  h.version = kVersion;
  h.kind = static_cast<uint32_t>(kind);
  return h;
}

struct TermRecord {
  uint64_t postings;   // byte offset of the term's BlockHeaders in postings.bin
  uint32_t df;         // documents containing the term (>= 1)
  float max_tf_part;   // the largest tf_part over the term's postings
  uint32_t str_offset; // the term's bytes in terms.str
  uint32_t str_length;
};
static_assert(sizeof(TermRecord) == 24, "TermRecord must be 24 bytes");

struct BlockHeader {
  uint32_t last_doc;   // the last (largest) document of the block
  uint32_t data;       // byte offset of the block data, from the end of the term's headers
  float max_tf_part;   // the largest tf_part in the block
};
static_assert(sizeof(BlockHeader) == 12, "BlockHeader must be 12 bytes");

inline uint32_t num_blocks(uint32_t df) { return (df + kBlockSize - 1) / kBlockSize; }

// k1 * (1 - b + b * dl / avgdl), the per-document part of the BM25 denominator.
inline float doc_norm(uint32_t doc_len, double k1, double b, double avg_doc_len) {
  const double avg = avg_doc_len > 0 ? avg_doc_len : 1.0;
  return static_cast<float>(k1 * (1.0 - b + b * static_cast<double>(doc_len) / avg));
}

inline float idf(uint64_t num_docs, uint64_t df) {
  const double n = static_cast<double>(num_docs), d = static_cast<double>(df);
  return static_cast<float>(std::log(1.0 + (n - d + 0.5) / (d + 0.5)));
}

inline float tf_part(uint32_t tf, float norm) {
  const float t = static_cast<float>(tf);
  return t / (t + norm);
}

}  // namespace strata::retrieval::format
