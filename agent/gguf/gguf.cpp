// Over 450 lines on purpose: the bounds-checked GGUF reader (header, every metadata type,
// tensor infos, alignment) and its writer are one format; both halves share the private
// byte-level cursor and type tables. Dequantisation lives in gguf_quants.cpp.
#include "agent/gguf/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "core/error.h"

namespace strata::agent::gguf {

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as little-endian u32
constexpr int kMaxArrayDepth = 16;       // nested arrays deeper than this are refused
constexpr uint32_t kMaxDims = 4;         // GGML_MAX_DIMS

// A bounds-checked reader over the mapped header. Every read names the file and the byte offset.
class Cursor {
 public:
  Cursor(const std::string& path, const uint8_t* base, size_t size) : path_(path), base_(base), size_(size) {}

  size_t pos() const { return pos_; }
  size_t left() const { return size_ - pos_; }

  void need(size_t n, const char* what) const {
    STRATA_CHECK(n <= left(), path_ << ": truncated GGUF file: " << what << " needs " << n << " bytes at offset "
                                    << pos_ << " but only " << left() << " remain");
  }
  template <typename T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, base_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string string(const char* what) {
    const uint64_t n = read<uint64_t>(what);
    need(n, what);
    std::string s(reinterpret_cast<const char*>(base_ + pos_), n);
    pos_ += n;
    return s;
  }

 private:
  const std::string& path_;
  const uint8_t* base_;
  size_t size_;
  size_t pos_ = 0;
};

size_t scalar_size(ValueType t) {
  switch (t) {
    case ValueType::kUint8: case ValueType::kInt8: case ValueType::kBool: return 1;
    case ValueType::kUint16: case ValueType::kInt16: return 2;
    case ValueType::kUint32: case ValueType::kInt32: case ValueType::kFloat32: return 4;
    case ValueType::kUint64: case ValueType::kInt64: case ValueType::kFloat64: return 8;
    case ValueType::kString: return 8;   // at least its length
    case ValueType::kArray: return 12;   // at least its element type and count
  }
  return 0;
}

bool known_value_type(uint32_t t) { return t <= static_cast<uint32_t>(ValueType::kFloat64); }

Value read_value(Cursor& c, ValueType type, const std::string& path, const std::string& key, int depth) {
  Value v;
  v.type = type;
  switch (type) {
    case ValueType::kUint8: v.u = c.read<uint8_t>("a u8 value"); break;
    case ValueType::kInt8: v.i = c.read<int8_t>("an i8 value"); break;
    case ValueType::kUint16: v.u = c.read<uint16_t>("a u16 value"); break;
    case ValueType::kInt16: v.i = c.read<int16_t>("an i16 value"); break;
    case ValueType::kUint32: v.u = c.read<uint32_t>("a u32 value"); break;
    case ValueType::kInt32: v.i = c.read<int32_t>("an i32 value"); break;
    case ValueType::kUint64: v.u = c.read<uint64_t>("a u64 value"); break;
    case ValueType::kInt64: v.i = c.read<int64_t>("an i64 value"); break;
    case ValueType::kFloat32: v.f = c.read<float>("an f32 value"); break;
    case ValueType::kFloat64: v.f = c.read<double>("an f64 value"); break;
    case ValueType::kBool: {
      const uint8_t b = c.read<uint8_t>("a bool value");
      STRATA_CHECK(b <= 1, path << ": metadata '" << key << "': bool byte " << int(b) << " is neither 0 nor 1");
      v.i = b;
      break;
    }
    case ValueType::kString: v.s = c.string("a string value"); break;
    case ValueType::kArray: {
      STRATA_CHECK(depth < kMaxArrayDepth,
                   path << ": metadata '" << key << "': arrays nested deeper than " << kMaxArrayDepth);
      const uint32_t et = c.read<uint32_t>("an array element type");
      STRATA_CHECK(known_value_type(et), path << ": metadata '" << key << "': unknown array element type " << et);
      v.elem_type = static_cast<ValueType>(et);
      const uint64_t n = c.read<uint64_t>("an array length");
      // Each element takes at least scalar_size bytes: a count the file cannot hold is corrupt.
      STRATA_CHECK(n <= c.left() / scalar_size(v.elem_type),
                   path << ": metadata '" << key << "': array of " << n << " " << value_type_name(v.elem_type)
                        << " elements does not fit in the " << c.left() << " bytes left (truncated or corrupt)");
      v.array.reserve(n);
      for (uint64_t k = 0; k < n; ++k) v.array.push_back(read_value(c, v.elem_type, path, key, depth + 1));
      break;
    }
  }
  return v;
}

void append_bytes(std::string& out, const void* p, size_t n) { out.append(static_cast<const char*>(p), n); }
template <typename T>
void append(std::string& out, T v) {
  append_bytes(out, &v, sizeof(T));
}
void append_string(std::string& out, const std::string& s) {
  append<uint64_t>(out, s.size());
  out += s;
}

void write_value(std::string& out, const Value& v) {
  switch (v.type) {
    case ValueType::kUint8: append<uint8_t>(out, static_cast<uint8_t>(v.u)); break;
    case ValueType::kInt8: append<int8_t>(out, static_cast<int8_t>(v.i)); break;
    case ValueType::kUint16: append<uint16_t>(out, static_cast<uint16_t>(v.u)); break;
    case ValueType::kInt16: append<int16_t>(out, static_cast<int16_t>(v.i)); break;
    case ValueType::kUint32: append<uint32_t>(out, static_cast<uint32_t>(v.u)); break;
    case ValueType::kInt32: append<int32_t>(out, static_cast<int32_t>(v.i)); break;
    case ValueType::kUint64: append<uint64_t>(out, v.u); break;
    case ValueType::kInt64: append<int64_t>(out, v.i); break;
    case ValueType::kFloat32: append<float>(out, static_cast<float>(v.f)); break;
    case ValueType::kFloat64: append<double>(out, v.f); break;
    case ValueType::kBool: append<uint8_t>(out, v.i ? 1 : 0); break;
    case ValueType::kString: append_string(out, v.s); break;
    case ValueType::kArray:
      append<uint32_t>(out, static_cast<uint32_t>(v.elem_type));
      append<uint64_t>(out, v.array.size());
      for (const Value& e : v.array) {
        STRATA_CHECK(e.type == v.elem_type, "GGUF array element of type " << value_type_name(e.type)
                                                                          << " in an array of "
                                                                          << value_type_name(v.elem_type));
        write_value(out, e);
      }
      break;
  }
}

}  // namespace

const char* value_type_name(ValueType t) {
  switch (t) {
    case ValueType::kUint8: return "u8";
    case ValueType::kInt8: return "i8";
    case ValueType::kUint16: return "u16";
    case ValueType::kInt16: return "i16";
    case ValueType::kUint32: return "u32";
    case ValueType::kInt32: return "i32";
    case ValueType::kFloat32: return "f32";
    case ValueType::kBool: return "bool";
    case ValueType::kString: return "string";
    case ValueType::kArray: return "array";
    case ValueType::kUint64: return "u64";
    case ValueType::kInt64: return "i64";
    case ValueType::kFloat64: return "f64";
  }
  return "?";
}

bool Value::is_integer() const {
  switch (type) {
    case ValueType::kUint8: case ValueType::kInt8: case ValueType::kUint16: case ValueType::kInt16:
    case ValueType::kUint32: case ValueType::kInt32: case ValueType::kUint64: case ValueType::kInt64:
      return true;
    default:
      return false;
  }
}

int64_t Value::as_int() const {
  switch (type) {
    case ValueType::kUint8: case ValueType::kUint16: case ValueType::kUint32: case ValueType::kUint64:
      STRATA_CHECK(u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()), "GGUF value " << u << " is too large");
      return static_cast<int64_t>(u);
    case ValueType::kInt8: case ValueType::kInt16: case ValueType::kInt32: case ValueType::kInt64:
      return i;
    default:
      STRATA_FAIL("GGUF value of type " << value_type_name(type) << " is not an integer");
  }
}

double Value::as_double() const {
  if (type == ValueType::kFloat32 || type == ValueType::kFloat64) return f;
  if (type == ValueType::kUint8 || type == ValueType::kUint16 || type == ValueType::kUint32 || type == ValueType::kUint64)
    return static_cast<double>(u);
  if (is_integer()) return static_cast<double>(i);
  STRATA_FAIL("GGUF value of type " << value_type_name(type) << " is not a number");
}

Value Value::of_string(std::string v) {
  Value x;
  x.type = ValueType::kString;
  x.s = std::move(v);
  return x;
}
Value Value::of_u32(uint32_t v) {
  Value x;
  x.type = ValueType::kUint32;
  x.u = v;
  return x;
}
Value Value::of_i32(int32_t v) {
  Value x;
  x.type = ValueType::kInt32;
  x.i = v;
  return x;
}
Value Value::of_u64(uint64_t v) {
  Value x;
  x.type = ValueType::kUint64;
  x.u = v;
  return x;
}
Value Value::of_f32(float v) {
  Value x;
  x.type = ValueType::kFloat32;
  x.f = v;
  return x;
}
Value Value::of_bool(bool v) {
  Value x;
  x.type = ValueType::kBool;
  x.i = v ? 1 : 0;
  return x;
}
Value Value::of_array(ValueType elem, std::vector<Value> items) {
  Value x;
  x.type = ValueType::kArray;
  x.elem_type = elem;
  x.array = std::move(items);
  return x;
}

std::string tensor_type_name(uint32_t code) {
  switch (static_cast<TensorType>(code)) {
    case TensorType::kF32: return "F32";
    case TensorType::kF16: return "F16";
    case TensorType::kQ4_0: return "Q4_0";
    case TensorType::kQ4_1: return "Q4_1";
    case TensorType::kQ5_0: return "Q5_0";
    case TensorType::kQ5_1: return "Q5_1";
    case TensorType::kQ8_0: return "Q8_0";
    case TensorType::kQ2_K: return "Q2_K";
    case TensorType::kQ3_K: return "Q3_K";
    case TensorType::kQ4_K: return "Q4_K";
    case TensorType::kQ5_K: return "Q5_K";
    case TensorType::kQ6_K: return "Q6_K";
    case TensorType::kBF16: return "BF16";
  }
  // Names of the types this reader cannot decode, so that the error says what the file holds.
  static const std::map<uint32_t, const char*> others = {
      {9, "Q8_1"}, {15, "Q8_K"}, {16, "IQ2_XXS"}, {17, "IQ2_XS"}, {18, "IQ3_XXS"}, {19, "IQ1_S"}, {20, "IQ4_NL"}, {21, "IQ3_S"},
      {22, "IQ2_S"}, {23, "IQ4_XS"}, {24, "I8"}, {25, "I16"}, {26, "I32"}, {27, "I64"}, {28, "F64"},
      {29, "IQ1_M"}, {34, "TQ1_0"}, {35, "TQ2_0"}, {39, "MXFP4"}};
  auto it = others.find(code);
  if (it != others.end()) return it->second;
  return "type " + std::to_string(code);
}

bool tensor_type_layout(uint32_t code, int64_t& block_elems, int64_t& block_bytes) {
  switch (static_cast<TensorType>(code)) {
    case TensorType::kF32: block_elems = 1; block_bytes = 4; return true;
    case TensorType::kF16: case TensorType::kBF16: block_elems = 1; block_bytes = 2; return true;
    case TensorType::kQ4_0: block_elems = 32; block_bytes = 18; return true;
    case TensorType::kQ4_1: block_elems = 32; block_bytes = 20; return true;
    case TensorType::kQ5_0: block_elems = 32; block_bytes = 22; return true;
    case TensorType::kQ5_1: block_elems = 32; block_bytes = 24; return true;
    case TensorType::kQ8_0: block_elems = 32; block_bytes = 34; return true;
    case TensorType::kQ2_K: block_elems = 256; block_bytes = 84; return true;
    case TensorType::kQ3_K: block_elems = 256; block_bytes = 110; return true;
    case TensorType::kQ4_K: block_elems = 256; block_bytes = 144; return true;
    case TensorType::kQ5_K: block_elems = 256; block_bytes = 176; return true;
    case TensorType::kQ6_K: block_elems = 256; block_bytes = 210; return true;
  }
  return false;
}

int64_t TensorInfo::n_elements() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;
  return n;
}

GgufFile::GgufFile(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  STRATA_CHECK(fd >= 0, "cannot open GGUF file '" << path << "': " << std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    STRATA_FAIL("'" << path << "' is not a regular file");
  }
  size_ = static_cast<size_t>(st.st_size);
  if (size_ == 0) {
    ::close(fd);
    STRATA_FAIL(path << ": empty file, not a GGUF file");
  }
  void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  STRATA_CHECK(p != MAP_FAILED, "cannot map '" << path << "': " << std::strerror(errno));
  const size_t size = size_;
  mapping_ = std::shared_ptr<void>(p, [size](void* q) { ::munmap(q, size); });
  base_ = static_cast<const uint8_t*>(p);
  parse();
}

GgufFile GgufFile::from_memory(const void* bytes, size_t size, std::string name) {
  GgufFile f;
  f.path_ = std::move(name);
  STRATA_CHECK(size > 0, f.path_ << ": empty file, not a GGUF file");
  f.base_ = static_cast<const uint8_t*>(bytes);
  f.size_ = size;
  f.parse();
  return f;
}

void GgufFile::parse() {
  const std::string& path = path_;
  Cursor c(path_, base_, size_);
  const uint32_t magic = c.read<uint32_t>("the magic");
  STRATA_CHECK(magic == kMagic, path << ": not a GGUF file (magic bytes are not \"GGUF\")");
  version_ = c.read<uint32_t>("the version");
  STRATA_CHECK(version_ == 2 || version_ == 3,
               path << ": GGUF version " << version_ << " is not supported (2 and 3 are)");
  const uint64_t n_tensors = c.read<uint64_t>("the tensor count");
  const uint64_t n_kv = c.read<uint64_t>("the metadata count");
  // A key takes at least 8 + 4 + 1 bytes, a tensor info at least 8 + 4 + 8 + 4 + 8.
  STRATA_CHECK(n_kv <= c.left() / 13, path << ": metadata count " << n_kv << " cannot fit in the file (truncated or corrupt header)");
  STRATA_CHECK(n_tensors <= c.left() / 32, path << ": tensor count " << n_tensors << " cannot fit in the file (truncated or corrupt header)");
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key = c.string("a metadata key");
    const uint32_t t = c.read<uint32_t>("a metadata value type");
    STRATA_CHECK(known_value_type(t), path << ": metadata '" << key << "' has unknown value type " << t);
    Value v = read_value(c, static_cast<ValueType>(t), path_, key, 0);
    STRATA_CHECK(metadata_.count(key) == 0, path << ": metadata key '" << key << "' appears twice");
    metadata_.emplace(std::move(key), std::move(v));
  }
  if (const Value* a = find("general.alignment")) {
    STRATA_CHECK(a->is_integer(), path << ": general.alignment must be an integer");
    const int64_t al = a->as_int();
    STRATA_CHECK(al > 0 && al <= (1 << 20) && (al & (al - 1)) == 0,
                 path << ": general.alignment " << al << " is not a power of two");
    alignment_ = static_cast<uint64_t>(al);
  }
  tensors_.reserve(n_tensors);
  for (uint64_t k = 0; k < n_tensors; ++k) {
    TensorInfo t;
    t.name = c.string("a tensor name");
    const uint32_t nd = c.read<uint32_t>("a tensor's dimension count");
    STRATA_CHECK(nd >= 1 && nd <= kMaxDims, path << ": tensor '" << t.name << "' has " << nd << " dimensions (1-4 allowed)");
    int64_t n = 1;
    for (uint32_t d = 0; d < nd; ++d) {
      const uint64_t dim = c.read<uint64_t>("a tensor dimension");
      STRATA_CHECK(dim >= 1 && dim <= (uint64_t(1) << 40) && static_cast<uint64_t>(n) <= (uint64_t(1) << 48) / dim,
                   path << ": tensor '" << t.name << "' has an impossible dimension " << dim);
      t.dims.push_back(static_cast<int64_t>(dim));
      n *= static_cast<int64_t>(dim);
    }
    t.type = c.read<uint32_t>("a tensor type");
    t.offset = c.read<uint64_t>("a tensor offset");
    int64_t be = 0, bb = 0;
    if (tensor_type_layout(t.type, be, bb)) {
      STRATA_CHECK(t.dims[0] % be == 0, path << ": tensor '" << t.name << "' of type " << tensor_type_name(t.type)
                                             << " has a first dimension " << t.dims[0] << " that is not a multiple of "
                                             << be);
      t.n_bytes = static_cast<uint64_t>(n / be) * static_cast<uint64_t>(bb);
    }
    STRATA_CHECK(t.offset % alignment_ == 0,
                 path << ": tensor '" << t.name << "' offset " << t.offset << " is not aligned to " << alignment_);
    STRATA_CHECK(tensor_index_.count(t.name) == 0, path << ": tensor '" << t.name << "' appears twice");
    tensor_index_[t.name] = tensors_.size();
    tensors_.push_back(std::move(t));
  }
  data_offset_ = (c.pos() + alignment_ - 1) / alignment_ * alignment_;
  STRATA_CHECK(data_offset_ <= size_ || tensors_.empty(),
               path << ": truncated GGUF file: the data section would start at byte " << data_offset_
                    << " of a " << size_ << "-byte file");
  for (const TensorInfo& t : tensors_) {
    if (t.n_bytes == 0) continue;  // unknown type: reported when the tensor is read
    const uint64_t avail = size_ > data_offset_ ? size_ - data_offset_ : 0;
    STRATA_CHECK(t.offset <= avail && t.n_bytes <= avail - t.offset,
                 path << ": truncated GGUF file: tensor '" << t.name << "' (" << t.n_bytes << " bytes at data offset "
                      << t.offset << ") runs past the end of the file");
  }
}

const Value* GgufFile::find(const std::string& key) const {
  auto it = metadata_.find(key);
  return it == metadata_.end() ? nullptr : &it->second;
}

const Value& GgufFile::get(const std::string& key) const {
  const Value* v = find(key);
  STRATA_CHECK(v != nullptr, path_ << ": metadata key '" << key << "' is missing");
  return *v;
}

const TensorInfo* GgufFile::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

std::vector<float> GgufFile::to_float(const TensorInfo& t) const {
  int64_t be = 0, bb = 0;
  STRATA_CHECK(tensor_type_layout(t.type, be, bb),
               path_ << ": tensor '" << t.name << "' has type " << tensor_type_name(t.type)
                     << ", which strata cannot dequantize (supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, "
                        "Q2_K, Q3_K, Q4_K, Q5_K, Q6_K)");
  std::vector<float> out(static_cast<size_t>(t.n_elements()));
  dequantize(t.type, data(t), out.data(), t.n_elements());
  return out;
}

void write_gguf(const std::string& path, const std::vector<std::pair<std::string, Value>>& metadata,
                const std::vector<WriteTensor>& tensors) {
  uint64_t alignment = 32;
  for (const auto& [k, v] : metadata)
    if (k == "general.alignment") alignment = static_cast<uint64_t>(v.as_int());
  std::string head;
  append<uint32_t>(head, kMagic);
  append<uint32_t>(head, 3);
  append<uint64_t>(head, tensors.size());
  append<uint64_t>(head, metadata.size());
  for (const auto& [k, v] : metadata) {
    append_string(head, k);
    append<uint32_t>(head, static_cast<uint32_t>(v.type));
    write_value(head, v);
  }
  uint64_t offset = 0;
  std::vector<uint64_t> offsets;
  for (const WriteTensor& t : tensors) {
    int64_t be = 0, bb = 0, n = 1;
    STRATA_CHECK(tensor_type_layout(t.type, be, bb), "cannot write tensor '" << t.name << "' of type "
                                                                              << tensor_type_name(t.type));
    for (int64_t d : t.dims) n *= d;
    STRATA_CHECK(n % be == 0 && static_cast<uint64_t>(n / be * bb) == t.bytes.size(),
                 "tensor '" << t.name << "': " << t.bytes.size() << " bytes do not match its dims and type");
    append_string(head, t.name);
    append<uint32_t>(head, static_cast<uint32_t>(t.dims.size()));
    for (int64_t d : t.dims) append<uint64_t>(head, static_cast<uint64_t>(d));
    append<uint32_t>(head, t.type);
    append<uint64_t>(head, offset);
    offsets.push_back(offset);
    offset += (t.bytes.size() + alignment - 1) / alignment * alignment;
  }
  head.resize((head.size() + alignment - 1) / alignment * alignment, '\0');
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    STRATA_CHECK(out, "cannot write '" << tmp << "'");
    out.write(head.data(), static_cast<std::streamsize>(head.size()));
    const std::vector<char> zeros(alignment, '\0');
    for (const WriteTensor& t : tensors) {
      out.write(reinterpret_cast<const char*>(t.bytes.data()), static_cast<std::streamsize>(t.bytes.size()));
      const uint64_t pad = (alignment - t.bytes.size() % alignment) % alignment;
      out.write(zeros.data(), static_cast<std::streamsize>(pad));
    }
    out.flush();
    STRATA_CHECK(out, "writing '" << tmp << "' failed (disk full?)");
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace strata::agent::gguf
