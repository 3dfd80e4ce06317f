#!/usr/bin/env python3
"""Reference ids from Hugging Face `tokenizers` for strata's WordPiece (BERT) parity test.

  wordpiece_parity.py --tokenizer T --out O [--n 10000] [--seed 7] [--texts F.jsonl ...]

Loads the WordPiece tokenizer.json T with `tokenizers`, makes N strings (the "contents",
"text" or "question" fields of the JSONL files given, whole and cut at random points, then
generated strings: accented Latin, combining marks, CJK, other scripts, punctuation of many
kinds, control and format characters, zero-width and unassigned code points, random characters
of Unicode 3.2, very long words, embedded special tokens) and writes one line per string to O:
  {"text", "ids" (add_special_tokens=False), "ids_wrapped" (add_special_tokens=True),
   "ids_trunc" (truncation max_length 16, add_special_tokens=True), "decoded" (decode(ids),
   special tokens kept)}.
Exit code 3 when `tokenizers` is not importable (the C++ test then skips).
"""
import argparse
import json
import random
import sys
import unicodedata

TRUNC = 16

LATIN = ["café", "naïve", "Ångström", "façade", "Über", "jalapeño", "résumé", "Zoë", "Straße",
         "cafe\u0301", "e\u0301le\u0300ve", "ﬁnance", "œuvre", "Ærø", "İstanbul", "ΣΟΦΟΣ", "Ωμέγα",
         "Dvořák", "Łódź", "Ṁỹ", "ǅemal", "ᾼ", "ß", "ẞ", "K", "Å"]
WORDS = ["the", "Search", "engine", "returned", "THREE", "passages", "about", "Paris", "river",
         "who", "wrote", "novel", "1973", "3.14", "U.S.", "don't", "it's", "e-mail", "O'Neil",
         "co-operate", "x", "I", "tokenizer", "unaffable", "hyperparameterisation"]
SCRIPTS = ["Привет", "мир", "Καλημέρα", "你好", "世界", "東京タワー", "ひらがな", "カタカナ",
           "안녕하세요", "مرحبا", "नमस्ते", "สวัสดี", "שלום", "ქართული", "𠀀𠀁", "㐀", "豈",
           "ｆｕｌｌｗｉｄｔｈ", "①②", "½", "Ⅻ", "𝔘𝔫𝔦"]
PUNCT = [".", ",", "!", "?", "...", "—", "–", "-", "«", "»", "“", "”", "‘", "’", "(", ")", "[",
         "]", "{", "}", "$", "+", "<", "=", ">", "^", "`", "|", "~", "@", "#", "%", "&", "*",
         "/", "\\", ":", ";", "_", "¿", "¡", "§", "¶", "•", "†", "€", "£", "©", "®", "°", "±",
         "×", "÷", "→", "∑", "√", "♥", "★", "😀", "👍🏽", "👨‍👩‍👧"]
ODD = ["\x00", "\x01", "\x07", "\x0b", "\x0c", "\x1c", "\x1f", "\x7f", "\x85", "\xa0", "\xad",
       "\u200b", "\u200c", "\u200d", "\u2028", "\u2029", "\u202f", "\u3000", "\ufeff", "\ufffd",
       "\ue000", "\U000f0000", "\u0378", "\u061c", "\u1680", "\u2003", "\u0301", "\u0308",
       "\u20dd", "\U0001d173"]
SPACES = [" ", "  ", "\t", "\n", "\r\n", " \n ", "\u00a0", "\u2009"]
SPECIALS = ["[CLS]", "[SEP]", "[MASK]", "[PAD]", "[UNK]", "[cls]"]


def token(rng):
    r = rng.random()
    if r < 0.35:
        w = rng.choice(WORDS)
    elif r < 0.5:
        w = rng.choice(LATIN)
    elif r < 0.62:
        w = rng.choice(SCRIPTS)
    elif r < 0.75:
        w = rng.choice(PUNCT)
    elif r < 0.83:
        w = rng.choice(ODD)
    elif r < 0.88:
        w = rng.choice(SPECIALS)
    elif r < 0.93:
        w = str(rng.randint(0, 10 ** rng.randint(1, 12)))
    elif r < 0.96:  # a long word: beyond max_input_chars_per_word or just under it
        w = "".join(rng.choice("abcdefghij") for _ in range(rng.choice([99, 100, 101, 150])))
    else:  # random code points from the BMP and beyond
        w = "".join(old_code_point(rng) for _ in range(rng.randint(1, 4)))
    return w


def old_code_point(rng):
    """A random character assigned by Unicode 3.2. `tokenizers` classifies characters with
    tables of an older Unicode than ICU's, so a character assigned since (e.g. a Unicode 14
    mark or a Unicode 15 punctuation sign) may be a mark or punctuation for strata and
    unassigned for `tokenizers` (docs/TOKENIZER.md); the parity check keeps to characters both
    agree on."""
    while True:
        c = chr(rng.choice([rng.randint(0x20, 0x2fff), rng.randint(0x3000, 0xd7ff),
                            rng.randint(0xe000, 0xffff), rng.randint(0x10000, 0x2ffff)]))
        if unicodedata.ucd_3_2_0.category(c) != "Cn":
            return c


def generated(rng):
    parts = []
    for _ in range(rng.randint(1, 14)):
        parts.append(token(rng))
        parts.append(rng.choice(SPACES) if rng.random() < 0.7 else "")
    return "".join(parts)


def real_texts(paths):
    out = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                rec = json.loads(line)
                for key in ("contents", "text", "question"):
                    if isinstance(rec.get(key), str):
                        out.append(rec[key])
                        break
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--texts", nargs="*", default=[])
    args = ap.parse_args()
    try:
        from tokenizers import Tokenizer
    except ImportError:
        print("the Python package `tokenizers` is not importable", file=sys.stderr)
        sys.exit(3)
    rng = random.Random(args.seed)
    tok = Tokenizer.from_file(args.tokenizer)
    tok.no_padding()
    tok.no_truncation()
    trunc = Tokenizer.from_file(args.tokenizer)
    trunc.no_padding()
    trunc.enable_truncation(max_length=TRUNC)

    strings = []
    for text in real_texts(args.texts)[: args.n // 2]:
        strings.append(text)
        if rng.random() < 0.3:  # a cut inside the text (may split a word or a character run)
            strings.append(text[: rng.randint(0, len(text))])
    strings = strings[: args.n // 2]
    while len(strings) < args.n:
        strings.append(generated(rng))

    with open(args.out, "w", encoding="utf-8") as f:
        for s in strings:
            ids = tok.encode(s, add_special_tokens=False).ids
            rec = {"text": s, "ids": ids,
                   "ids_wrapped": tok.encode(s).ids,
                   "ids_trunc": trunc.encode(s).ids,
                   "decoded": tok.decode(ids, skip_special_tokens=False)}
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
