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
//   impacts.bin    (version 2) header + per very common term, one byte per document bounding
//                  its tf_part (below)
// Every .bin/.idx/.str file starts with a 16-byte FileHeader. Integers are little-endian.
//
// Versions: the manifest's "version" is the index format (kVersion); a version-1 index (no
// impacts.bin) is still read, and searched without the bound scan. The FileHeaders carry their
// own kFileVersion, unchanged since version 1.
//
// impacts.bin: after the header, uint32 count and uint32 zero, then `count` ImpactEntry records
// sorted by term, then the arrays. A term gets an array when its df reaches the builder's
// impact_share of the documents. Its array holds impact_stride(num_docs) bytes (num_docs rounded
// up to 256, the tail zero) at a 64-byte aligned file offset: byte d is 0 when document d lacks
// the term, else the smallest q in 1..255 with q * max_tf_part / 255 >= the posting's tf_part
// (computed in double; the term's max_tf_part is in its TermRecord). top_k sums these bytes over
// all documents with SIMD to bound every document's score at once (bm25_search.h).
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

constexpr uint32_t kVersion = 2;      // the manifest's format version (what this build writes)
constexpr uint32_t kMinVersion = 1;   // the oldest manifest version this build reads
constexpr uint32_t kFileVersion = 1;  // the version in every FileHeader
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
constexpr char kImpacts[] = "impacts.bin";

// Which file a header belongs to (so a file swapped for another is caught).
enum class FileKind : uint32_t {
  kTerms = 1,
  kTermStrings = 2,
  kPostings = 3,
  kDocLens = 4,
  kDocIndex = 5,
  kDocs = 6,
  kImpacts = 7,
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
  h.version = kFileVersion;
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

struct ImpactEntry {
  uint32_t term;  // the term's slot in terms.bin
  uint32_t zero;
  uint64_t offset;  // of its array, from the start of impacts.bin
};
static_assert(sizeof(ImpactEntry) == 16, "ImpactEntry must be 16 bytes");

// Bytes of one impact array: num_docs rounded up to 256 (the bound scan's chunk).
constexpr uint32_t kImpactChunk = 256;
inline uint64_t impact_stride(uint64_t num_docs) {
  return (num_docs + kImpactChunk - 1) / kImpactChunk * kImpactChunk;
}

// The impact byte of a posting with this tf_part, in a list whose largest is max_tf_part.
inline uint8_t impact_byte(float tf_part, float max_tf_part) {
  if (!(max_tf_part > 0)) return 255;
  const double t = tf_part, m = max_tf_part;
  double q = std::ceil(t * 255.0 / m);
  if (q < 1) q = 1;
  while (q < 255 && q * m / 255.0 < t) q += 1;
  return static_cast<uint8_t>(q > 255 ? 255 : q);
}

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
