// GPT-2's byte-level alphabet: every byte 0..255 is shown as one printable Unicode character, so
// that a BPE vocabulary over these characters covers any byte string. Printable Latin-1 bytes
// ('!'..'~', U+00A1..U+00AC, U+00AE..U+00FF) stand for themselves; the other 68 bytes (controls,
// space, U+007F..U+00A0, U+00AD) are shifted to U+0100, U+0101, ... in increasing byte order.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace strata::agent::impl {

class ByteLevelAlphabet {
 public:
  static const ByteLevelAlphabet& get();

  // The code point that stands for byte `b`.
  uint32_t code_point(uint8_t b) const { return cp_[b]; }
  // Its UTF-8 spelling (2 bytes at most).
  std::string_view utf8(uint8_t b) const { return {utf8_[b].data(), utf8_len_[b]}; }
  // The byte that code point `cp` stands for, or -1 when `cp` is not in the alphabet.
  int byte_of(uint32_t cp) const { return cp < 512 ? inverse_[cp] : -1; }

  // Maps every byte of `raw` to its character (the ByteLevel pre-tokenizer's output).
  std::string encode(std::string_view raw) const;
  // Inverse of encode(); false when `text` holds a character outside the alphabet (or bad UTF-8),
  // in which case `out` is left unspecified.
  bool decode(std::string_view text, std::string& out) const;

  // The 256 bytes in the order GPT-2 lists them (printable ones first, then the shifted ones);
  // strata's trainer gives ids 0..255 in this order.
  const std::array<uint8_t, 256>& gpt2_order() const { return order_; }

 private:
  ByteLevelAlphabet();
  std::array<uint32_t, 256> cp_{};
  std::array<std::array<char, 2>, 256> utf8_{};
  std::array<uint8_t, 256> utf8_len_{};
  std::array<int16_t, 512> inverse_{};
  std::array<uint8_t, 256> order_{};
};

// Appends the UTF-8 encoding of `cp` to `out`.
void append_utf8(std::string& out, uint32_t cp);

// Decodes one UTF-8 character of `s` at `pos`. Returns its length (1..4) and sets `cp`, or returns
// 0 when the bytes at `pos` are not a valid, shortest-form UTF-8 character.
int decode_utf8(std::string_view s, size_t pos, uint32_t& cp);

}  // namespace strata::agent::impl
