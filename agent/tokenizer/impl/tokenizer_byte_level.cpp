#include "agent/tokenizer/impl/tokenizer_byte_level.h"

namespace strata::agent::impl {

namespace {
bool printable(int b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE; }
}  // namespace

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

int decode_utf8(std::string_view s, size_t pos, uint32_t& cp) {
  const size_t n = s.size() - pos;
  const auto b0 = static_cast<uint8_t>(s[pos]);
  auto cont = [&](size_t i) { return (static_cast<uint8_t>(s[pos + i]) & 0xC0) == 0x80; };
  auto bits = [&](size_t i) {
    return static_cast<uint32_t>(static_cast<uint8_t>(s[pos + i]) & 0x3F);
  };
  if (b0 < 0x80) {
    cp = b0;
    return 1;
  }
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    if (n < 2 || !cont(1)) return 0;
    cp = ((b0 & 0x1Fu) << 6) | bits(1);
    return 2;
  }
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    if (n < 3 || !cont(1) || !cont(2)) return 0;
    cp = ((b0 & 0x0Fu) << 12) | (bits(1) << 6) | bits(2);
    if (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return 3;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    if (n < 4 || !cont(1) || !cont(2) || !cont(3)) return 0;
    cp = ((b0 & 0x07u) << 18) | (bits(1) << 12) | (bits(2) << 6) | bits(3);
    if (cp < 0x10000 || cp > 0x10FFFF) return 0;
    return 4;
  }
  return 0;
}

const ByteLevelAlphabet& ByteLevelAlphabet::get() {
  static const ByteLevelAlphabet alphabet;
  return alphabet;
}

ByteLevelAlphabet::ByteLevelAlphabet() {
  inverse_.fill(-1);
  uint32_t shifted = 0;
  size_t k = 0;
  for (int b = 0; b < 256; ++b) {
    if (printable(b)) order_[k++] = static_cast<uint8_t>(b);
  }
  for (int b = 0; b < 256; ++b) {
    cp_[b] = printable(b) ? static_cast<uint32_t>(b) : 256 + shifted++;
    if (!printable(b)) order_[k++] = static_cast<uint8_t>(b);
    std::string s;
    append_utf8(s, cp_[b]);
    utf8_len_[b] = static_cast<uint8_t>(s.size());
    for (size_t i = 0; i < s.size(); ++i) utf8_[b][i] = s[i];
    inverse_[cp_[b]] = static_cast<int16_t>(b);
  }
}

std::string ByteLevelAlphabet::encode(std::string_view raw) const {
  std::string out;
  out.reserve(raw.size() * 2);
  for (char c : raw) out.append(utf8(static_cast<uint8_t>(c)));
  return out;
}

bool ByteLevelAlphabet::decode(std::string_view text, std::string& out) const {
  size_t pos = 0;
  while (pos < text.size()) {
    uint32_t cp = 0;
    const int len = decode_utf8(text, pos, cp);
    if (len == 0) return false;
    const int b = byte_of(cp);
    if (b < 0) return false;
    out.push_back(static_cast<char>(b));
    pos += static_cast<size_t>(len);
  }
  return true;
}

}  // namespace strata::agent::impl
