#!/usr/bin/env python3
"""Reference sentence embeddings from Hugging Face `transformers` for strata's encoder test.

  encoder_ref.py --model DIR --texts F.jsonl --out PREFIX [--max-length N] [--batch 32]

Reads {"text": ...} lines, encodes them with AutoTokenizer + AutoModel (float32, eval mode,
padding to the batch's longest, truncation at N tokens including [CLS]/[SEP]) and writes the
last hidden states pooled two ways, L2-normalised, as raw little-endian float32 rows:
PREFIX.mean.f32 (mean over the attention mask, as sentence-transformers' Pooling) and
PREFIX.cls.f32 (the [CLS] state). Exit code 3 when torch or transformers is not importable.
"""
import argparse
import json
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--texts", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args()
    try:
        import torch
        from transformers import AutoModel, AutoTokenizer
    except ImportError as e:
        print(f"cannot import the reference: {e}", file=sys.stderr)
        sys.exit(3)
    texts = [json.loads(line)["text"] for line in open(args.texts, encoding="utf-8") if line.strip()]
    tok = AutoTokenizer.from_pretrained(args.model)
    model = AutoModel.from_pretrained(args.model, dtype=torch.float32).eval()
    means, clss = [], []
    with torch.inference_mode():
        for i in range(0, len(texts), args.batch):
            enc = tok(texts[i:i + args.batch], padding=True, truncation=True,
                      max_length=args.max_length, return_tensors="pt")
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            means.append(torch.nn.functional.normalize(mean, p=2, dim=1))
            clss.append(torch.nn.functional.normalize(hidden[:, 0], p=2, dim=1))
    torch.cat(means).contiguous().numpy().astype("<f4").tofile(args.out + ".mean.f32")
    torch.cat(clss).contiguous().numpy().astype("<f4").tofile(args.out + ".cls.f32")


if __name__ == "__main__":
    main()
