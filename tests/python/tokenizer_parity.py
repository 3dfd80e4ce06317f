#!/usr/bin/env python3
"""Reference ids from Hugging Face `tokenizers` for strata's tokenizer parity test.

  tokenizer_parity.py prepare --dir D [--n 10000] [--seed 7] [--only all|qwen|gpt2|strings]
      trains two byte-level BPE tokenizers with `tokenizers` (Qwen2-style Split + ByteLevel, and
      GPT-2-style ByteLevel(use_regex=True)) on generated text, writes D/train.txt,
      D/qwen/tokenizer.json, D/gpt2/tokenizer.json, D/strings.jsonl and the expected ids
      D/qwen_expected.jsonl, D/gpt2_expected.jsonl.
  tokenizer_parity.py encode --tokenizer T --strings S --out O
      encodes the strings of S with tokenizer.json T and writes the expected ids to O.

Expected-id lines: {"text": str, "ids": [...], "ids_plain": [...], "ids_wrapped": [...],
"decoded": str}: ids with add_special_tokens=False, ids_plain with special tokens treated as
text (encode_special_tokens=True), ids_wrapped with the post-processor (add_special_tokens=True),
decoded = decode(ids) without skipping special tokens.

Exit code 3 when `tokenizers` is missing and cannot be installed (the C++ test then skips).
"""
import argparse
import json
import os
import random
import subprocess
import sys

TOKENIZERS_VERSION = "0.23.3"
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
                  r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
                 r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def import_tokenizers():
    try:
        import tokenizers  # noqa: F401
    except ImportError:
        rc = subprocess.call([sys.executable, "-m", "pip", "install", "-q",
                              f"tokenizers=={TOKENIZERS_VERSION}"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if rc != 0:
            print(f"tokenizers=={TOKENIZERS_VERSION} is not installed and pip could not "
                  "install it", file=sys.stderr)
            sys.exit(3)
    import tokenizers
    return tokenizers


# ---- generated text ---------------------------------------------------------------------------

LATIN = ["café", "naïve", "Ångström", "façade", "Über", "jalapeño", "résumé", "Zoë", "smörgåsbord",
         "cafe\u0301", "e\u0301le\u0300ve", "Straße", "ﬁnance", "œuvre", "Ærø", "İstanbul"]
ENGLISH = ["the", "search", "engine", "returned", "three", "passages", "about", "Paris", "river",
           "Who", "wrote", "novel", "published", "in", "album", "recorded", "by", "THE", "Answer",
           "question", "information", "hello", "world", "x", "a", "I", "tokenizer", "byte"]
SCRIPTS = ["Привет", "мир", "Москва", "Καλημέρα", "κόσμε", "Ελλάδα", "你好", "世界", "東京タワー",
           "ひらがな", "カタカナ", "안녕하세요", "مرحبا", "بالعالم", "नमस्ते", "दुनिया", "สวัสดี",
           "שלום", "ქართული", "Հայերեն", "ᏣᎳᎩ"]
EMOJI = ["😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "❤️", "🇯🇵", "🇫🇷", "🤖", "✨", "🧑🏿‍💻", "☕", "🎉🎉"]
SPACES = [" ", "  ", "   ", "\t", "\n", "\r\n", "\n\n", "\n\n\n", " \t ", "\t\t", " \n ",
          "\u00a0", "\u3000", "\u2003", "\u0085", "\u2028", "\u202f", "\r", "\x0b", "\x0c"]
PUNCT = ["!", "!!!", "...", "?!", "—", "–", "«", "»", "“", "”", "(x)", "[]", "{}", "#", "@",
         "$", "%", "^&*", "```", "->", "::", ",", ".", ";", "'", "\"", "''", "‘", "’", "/", "\\",
         "_", "-", "+=", "<", ">", "|", "~"]
CONTRACTIONS = ["don't", "I'M", "we'll", "THEY'RE", "she'd", "it's", "You'VE", "'S", "'s",
                "can't", "O'Neil", "'ll", "'d", "'T", "rock'n'roll", "Stekovus's"]
SPECIAL_TEXT = SPECIALS + ["<|im_", "<|endoftext|", "<search>", "</search>", "<information>",
                           "</information>", "<answer>", "</answer>", "<tool>", "<mask>"]
RANGES = [(0x00C0, 0x017F), (0x0410, 0x044F), (0x0391, 0x03A1), (0x03A3, 0x03C9),
          (0x4E00, 0x9FA5), (0xAC00, 0xD7A3), (0x0300, 0x036F), (0x3041, 0x3096),
          (0x0021, 0x007E), (0x0621, 0x064A), (0x0905, 0x0939), (0x1F600, 0x1F64F)]


def digits(rng):
    choice = rng.random()
    if choice < 0.6:
        return "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 12)))
    if choice < 0.8:
        return rng.choice(["3.14159", "1,000,000", "2024-01-31", "10:45", "0x1F", "1e-9", "½"])
    return rng.choice(["２０２４", "٣٤٥", "१२३", "①②", "Ⅻ", "²³"])


def random_chars(rng):
    lo, hi = rng.choice(RANGES)
    return "".join(chr(rng.randint(lo, hi)) for _ in range(rng.randint(1, 6)))


def segment(rng):
    r = rng.random()
    if r < 0.25:
        return rng.choice(ENGLISH)
    if r < 0.35:
        return rng.choice(LATIN)
    if r < 0.47:
        return rng.choice(SCRIPTS)
    if r < 0.53:
        return rng.choice(EMOJI)
    if r < 0.61:
        return rng.choice(SPACES)
    if r < 0.68:
        return digits(rng)
    if r < 0.76:
        return rng.choice(PUNCT)
    if r < 0.83:
        return rng.choice(CONTRACTIONS)
    if r < 0.90:
        return rng.choice(SPECIAL_TEXT)
    return random_chars(rng)


def random_string(rng):
    parts = []
    for _ in range(rng.randint(1, 14)):
        parts.append(segment(rng))
        parts.append(rng.choice(["", " ", " ", " ", rng.choice(SPACES)]))
    return "".join(parts)


def training_text(rng, n_lines):
    lines = []
    for _ in range(n_lines):
        words = []
        for _ in range(rng.randint(3, 20)):
            r = rng.random()
            if r < 0.6:
                words.append(rng.choice(ENGLISH))
            elif r < 0.7:
                words.append(rng.choice(LATIN))
            elif r < 0.8:
                words.append(rng.choice(SCRIPTS))
            elif r < 0.85:
                words.append(rng.choice(CONTRACTIONS))
            elif r < 0.9:
                words.append(digits(rng))
            elif r < 0.93:
                words.append(rng.choice(PUNCT))
            elif r < 0.95:
                words.append(random_chars(rng))
            else:
                words.append(rng.choice(EMOJI))
        lines.append(" ".join(words))
    return "\n".join(lines) + "\n"


# ---- tokenizers ----------------------------------------------------------------------------------

def train_qwen_style(tk, text_path, out_path):
    from tokenizers import Regex, decoders, models, normalizers, pre_tokenizers, trainers
    tok = tk.Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1500, min_frequency=2, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train([text_path], trainer)
    # Non-special added tokens, one matched on normalized text, one on raw text.
    tok.add_tokens([tk.AddedToken("<search>", normalized=True),
                    tk.AddedToken("</search>", normalized=False)])
    tok.save(out_path)


def train_llama3_style(tk, text_path, out_path):
    """Llama-3's layout: Split(digits in threes) + ByteLevel, ignore_merges, and a
    TemplateProcessing post-processor that puts <|begin_of_text|> first."""
    from tokenizers import Regex, decoders, models, pre_tokenizers, processors, trainers
    tok = tk.Tokenizer(models.BPE(ignore_merges=True))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
                "<|end_header_id|>", "<|eot_id|>"]
    trainer = trainers.BpeTrainer(vocab_size=1500, min_frequency=2, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train([text_path], trainer)
    bos = tok.token_to_id("<|begin_of_text|>")
    tok.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B:1",
        special_tokens=[("<|begin_of_text|>", bos)])
    # A vocabulary word that no merge sequence reaches, so that ignore_merges matters.
    d = json.loads(tok.to_str())
    vocab = d["model"]["vocab"]
    for word in ["Ġquestionably", "Ġsearchengine", "Ġthethe"]:
        vocab[word] = len(vocab)
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(d, f, ensure_ascii=False)


def train_gpt2_style(tk, text_path, out_path):
    from tokenizers import decoders, models, pre_tokenizers, trainers
    tok = tk.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1200, min_frequency=2,
                                  special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train([text_path], trainer)
    tok.add_tokens([tk.AddedToken("<tool>", single_word=True)])
    tok.add_special_tokens([tk.AddedToken("<mask>", lstrip=True, rstrip=True)])
    tok.save(out_path)
    # The same model with add_prefix_space=True (applied to every piece between added tokens).
    from tokenizers import pre_tokenizers
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)
    tok.save(out_path.replace("gpt2", "gpt2_prefix"))


def write_expected(tk, tokenizer_path, strings, out_path):
    tok = tk.Tokenizer.from_file(tokenizer_path)
    with_special = tok.encode_batch(strings, add_special_tokens=False)
    tok.encode_special_tokens = True
    plain = tok.encode_batch(strings, add_special_tokens=False)
    tok.encode_special_tokens = False
    with open(out_path, "w", encoding="utf-8") as f:
        for s, a, b in zip(strings, with_special, plain):
            rec = {"text": s, "ids": a.ids, "ids_plain": b.ids,
                   "ids_wrapped": tok.encode(s, add_special_tokens=True).ids,
                   "decoded": tok.decode(a.ids, skip_special_tokens=False)}
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")


def read_strings(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f if line.strip()]


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare")
    p.add_argument("--dir", required=True)
    p.add_argument("--n", type=int, default=10000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--only", choices=["all", "qwen", "gpt2", "llama3", "strings"], default="all",
                   help="which reference tokenizer to train (strings: only train.txt and "
                        "strings.jsonl)")
    e = sub.add_parser("encode")
    e.add_argument("--tokenizer", required=True)
    e.add_argument("--strings", required=True)
    e.add_argument("--out", required=True)
    args = ap.parse_args()
    tk = import_tokenizers()

    if args.cmd == "encode":
        write_expected(tk, args.tokenizer, read_strings(args.strings), args.out)
        return

    rng = random.Random(args.seed)
    d = args.dir
    os.makedirs(os.path.join(d, "qwen"), exist_ok=True)
    for sub_dir in ("gpt2", "gpt2_prefix", "llama3"):
        os.makedirs(os.path.join(d, sub_dir), exist_ok=True)
    train_path = os.path.join(d, "train.txt")
    with open(train_path, "w", encoding="utf-8") as f:
        f.write(training_text(rng, 6000))
    strings = [random_string(rng) for _ in range(args.n)]
    strings += ["", " ", "\n", "don't I'M", "<|im_start|>user\nhi<|im_end|>\n",
                " questionably searchengine thethe", "1234567 89",
                "a" * 3000, "👨‍👩‍👧‍👦" * 50]
    with open(os.path.join(d, "strings.jsonl"), "w", encoding="utf-8") as f:
        for s in strings:
            f.write(json.dumps({"text": s}, ensure_ascii=False) + "\n")
    if args.only in ("all", "qwen"):
        train_qwen_style(tk, train_path, os.path.join(d, "qwen", "tokenizer.json"))
        write_expected(tk, os.path.join(d, "qwen", "tokenizer.json"), strings,
                       os.path.join(d, "qwen_expected.jsonl"))
    if args.only in ("all", "gpt2"):
        train_gpt2_style(tk, train_path, os.path.join(d, "gpt2", "tokenizer.json"))
        write_expected(tk, os.path.join(d, "gpt2", "tokenizer.json"), strings,
                       os.path.join(d, "gpt2_expected.jsonl"))
        write_expected(tk, os.path.join(d, "gpt2_prefix", "tokenizer.json"), strings,
                       os.path.join(d, "gpt2_prefix_expected.jsonl"))
    if args.only in ("all", "llama3"):
        train_llama3_style(tk, train_path, os.path.join(d, "llama3", "tokenizer.json"))
        write_expected(tk, os.path.join(d, "llama3", "tokenizer.json"), strings,
                       os.path.join(d, "llama3_expected.jsonl"))


if __name__ == "__main__":
    main()
