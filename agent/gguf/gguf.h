// GGUF files (llama.cpp's model format), read and written without LibTorch.
//
// Layout (versions 2 and 3; all integers little-endian):
//   "GGUF" magic, u32 version, u64 tensor_count, u64 kv_count,
//   kv_count metadata pairs: string key, u32 value type, value
//     (strings are u64 length + bytes; arrays are u32 element type + u64 count + elements,
//      and may nest),
//   tensor_count tensor infos: string name, u32 n_dims, u64 dims[n_dims] (dims[0] varies
//     fastest: a PyTorch [rows, cols] matrix is stored with dims {cols, rows}), u32 ggml type,
//     u64 offset relative to the data section,
//   padding to `general.alignment` (default 32), then the data section.
//
// GgufFile maps the file read-only and checks every length, count and offset against the file
// size before it is used: a truncated or corrupt file is a strata::Error that names the file and
// what is wrong, never an out-of-bounds read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace strata::agent::gguf {

// Metadata value types (gguf_type in llama.cpp).
enum class ValueType : uint32_t {
  kUint8 = 0, kInt8 = 1, kUint16 = 2, kInt16 = 3, kUint32 = 4, kInt32 = 5, kFloat32 = 6,
  kBool = 7, kString = 8, kArray = 9, kUint64 = 10, kInt64 = 11, kFloat64 = 12,
};
const char* value_type_name(ValueType t);

// One metadata value. Scalars keep their type; integers are held as int64/uint64, floats as
// double (float32 values round-trip exactly). Arrays hold their element type and elements,
// which may be arrays themselves.
struct Value {
  ValueType type = ValueType::kUint32;
  int64_t i = 0;         // signed integer types and bool
  uint64_t u = 0;        // unsigned integer types
  double f = 0;          // float32, float64
  std::string s;         // string
  ValueType elem_type = ValueType::kUint8;  // arrays
  std::vector<Value> array;

  bool is_integer() const;
  bool is_number() const { return is_integer() || type == ValueType::kFloat32 || type == ValueType::kFloat64; }
  // Numeric value as int64 / double. Throws strata::Error when not a number (or out of range).
  int64_t as_int() const;
  double as_double() const;

  static Value of_string(std::string v);
  static Value of_u32(uint32_t v);
  static Value of_i32(int32_t v);
  static Value of_u64(uint64_t v);
  static Value of_f32(float v);
  static Value of_bool(bool v);
  static Value of_array(ValueType elem, std::vector<Value> items);
};

// ggml tensor types this reader knows the block layout of (ggml_type in llama.cpp).
enum class TensorType : uint32_t {
  kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8,
  kQ2_K = 10, kQ3_K = 11, kQ4_K = 12, kQ5_K = 13, kQ6_K = 14, kBF16 = 30,
};
// "Q4_K" etc. for any code (unknown codes: "type 123").
std::string tensor_type_name(uint32_t code);
// Elements per block and bytes per block; false for a code this reader cannot decode.
bool tensor_type_layout(uint32_t code, int64_t& block_elems, int64_t& block_bytes);

struct TensorInfo {
  std::string name;
  std::vector<int64_t> dims;  // GGUF order: dims[0] varies fastest
  uint32_t type = 0;          // ggml type code
  uint64_t offset = 0;        // relative to the data section
  uint64_t n_bytes = 0;       // computed from type and dims
  int64_t n_elements() const;
  // PyTorch order (dims reversed).
  std::vector<int64_t> shape() const { return {dims.rbegin(), dims.rend()}; }
};

class GgufFile {
 public:
  // Maps and parses `path`. Throws strata::Error naming the file on any inconsistency.
  explicit GgufFile(const std::string& path);
  // Parses `size` bytes at `bytes` with the same checks, without copying them: they must outlive
  // this object (data() points into them). `name` stands for the path in errors. For tests and
  // the fuzzers (tests/fuzz), which have the bytes in memory.
  static GgufFile from_memory(const void* bytes, size_t size, std::string name = "<memory>");

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  const std::map<std::string, Value>& metadata() const { return metadata_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }

  bool has(const std::string& key) const { return metadata_.count(key) != 0; }
  // Throws naming the file and the key when absent.
  const Value& get(const std::string& key) const;
  const Value* find(const std::string& key) const;
  const TensorInfo* find_tensor(const std::string& name) const;

  // The raw bytes of a tensor (inside the mapping; valid while this object lives).
  const uint8_t* data(const TensorInfo& t) const { return base_ + data_offset_ + t.offset; }
  // The tensor dequantised to float32, in GGUF order. Throws naming the tensor and its type
  // when the type is not supported.
  std::vector<float> to_float(const TensorInfo& t) const;

 private:
  GgufFile() = default;
  void parse();  // reads the header at base_/size_

  std::string path_;
  std::shared_ptr<void> mapping_;  // empty for from_memory
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::map<std::string, Value> metadata_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> tensor_index_;
};

// ---- dequantisation and quantisation (gguf_quants.cpp) ----------------------------------------
// Decodes `n` elements (a multiple of the type's block size) of `code` from `src` into `dst`.
// Throws strata::Error for a type that is not supported.
void dequantize(uint32_t code, const uint8_t* src, float* dst, int64_t n);
// Encodes `n` floats as F32, F16, BF16 or Q8_0 (n a multiple of 32 for Q8_0); returns the bytes.
std::vector<uint8_t> quantize(uint32_t code, const float* src, int64_t n);

float half_to_float(uint16_t h);
uint16_t float_to_half(float f);  // round to nearest even, with overflow to inf
float bf16_to_float(uint16_t h);
uint16_t float_to_bf16(float f);  // round to nearest even (NaN stays NaN)

// ---- writing ----------------------------------------------------------------------------------
// A tensor to write: its name, GGUF-order dims, type and already-encoded bytes.
struct WriteTensor {
  std::string name;
  std::vector<int64_t> dims;
  uint32_t type = 0;
  std::vector<uint8_t> bytes;
};
// Writes a GGUF v3 file (alignment 32, or `general.alignment` when set in `metadata`), keys in
// the order given. Writes to `path`.tmp then renames.
void write_gguf(const std::string& path, const std::vector<std::pair<std::string, Value>>& metadata,
                const std::vector<WriteTensor>& tensors);

}  // namespace strata::agent::gguf
