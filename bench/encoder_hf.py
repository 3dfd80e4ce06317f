#!/usr/bin/env python3
"""The Python baseline of scripts/bench/encoder.sh: Hugging Face `transformers` (AutoTokenizer +
AutoModel, eval, inference_mode) with mean pooling and L2 normalisation, on the first --n
passages of a corpus JSONL in batches of --batch (the order of the file, padded to each
batch's longest), after one warm-up batch. Prints one JSON line like encoder_bench."""
import argparse
import json
import time

import torch
from transformers import AutoModel, AutoTokenizer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--in", dest="inp", required=True)
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--bf16", action="store_true")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    texts = []
    with open(args.inp, encoding="utf-8") as f:
        for line in f:
            if len(texts) >= args.n:
                break
            rec = json.loads(line)
            texts.append(rec.get("contents", rec.get("text")))
    dtype = torch.bfloat16 if args.bf16 else torch.float32
    tok = AutoTokenizer.from_pretrained(args.model)
    model = AutoModel.from_pretrained(args.model, dtype=dtype).eval()

    def encode(batch_texts):
        out = []
        with torch.inference_mode():
            for i in range(0, len(batch_texts), args.batch):
                enc = tok(batch_texts[i:i + args.batch], padding=True, truncation=True,
                          max_length=args.max_length, return_tensors="pt")
                hidden = model(**enc).last_hidden_state.float()
                mask = enc["attention_mask"].unsqueeze(-1).float()
                mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                out.append(torch.nn.functional.normalize(mean, p=2, dim=1))
        return torch.cat(out)

    encode(texts[:args.batch])
    t0 = time.perf_counter()
    encode(texts)
    s = time.perf_counter() - t0
    print(json.dumps({"side": "transformers", "dtype": "bf16" if args.bf16 else "fp32",
                      "passages": len(texts), "batch": args.batch, "max_length": args.max_length,
                      "threads": torch.get_num_threads(), "seconds": s,
                      "passages_per_s": len(texts) / s}))


if __name__ == "__main__":
    main()
