#!/usr/bin/env python3
"""Python-side baselines for scripts/bench/policy.sh, mirroring bench/policy_bench.cpp:
  gen:   transformers `generate` (greedy, eager attention, KV cache), exactly --new tokens for
         --batch prompts of --prompt-len random ids; generated tokens/s
  train: forward + backward of per-token log-probs (log_softmax + gather) in PyTorch; tokens/s
Prints one JSON line.
"""
import argparse
import json
import time

import torch
from transformers import AutoModelForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--mode", choices=["gen", "train"], default="gen")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--prompt-len", type=int, default=128)
    ap.add_argument("--new", type=int, default=128)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    ap.add_argument("--prompt-ids", default="", help="gen: comma-separated ids, the prompt of every sequence")
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    model = AutoModelForCausalLM.from_pretrained(a.model, dtype=getattr(torch, a.dtype), attn_implementation="eager")
    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(1)
    best = float("inf")
    if a.mode == "gen":
        model.eval()
        ids = torch.randint(0, vocab, (a.batch, a.prompt_len), generator=g)
        if a.prompt_ids:
            one = torch.tensor([int(x) for x in a.prompt_ids.split(",")])
            ids = one.unsqueeze(0).expand(a.batch, -1).contiguous()
            a.prompt_len = ids.shape[1]
        mask = torch.ones_like(ids)
        produced = 0
        for r in range(a.reps + 1):
            t0 = time.perf_counter()
            with torch.no_grad():
                out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=a.new,
                                     min_new_tokens=a.new, do_sample=False, eos_token_id=None,
                                     pad_token_id=0)
            s = time.perf_counter() - t0
            produced = (out.shape[1] - a.prompt_len) * a.batch
            if r > 0 or a.reps == 0:
                best = min(best, s)
        res = {"mode": "gen", "batch": a.batch, "prompt_len": a.prompt_len, "new": a.new,
               "seconds": best, "tokens_per_s": produced / best}
    else:
        model.train()
        ids = torch.randint(0, vocab, (a.batch, a.seq), generator=g)
        for r in range(a.reps + 1):
            t0 = time.perf_counter()
            logits = model(input_ids=ids).logits[:, :-1].float()
            lp = torch.log_softmax(logits, -1).gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
            (-lp.sum()).backward()
            s = time.perf_counter() - t0
            model.zero_grad(set_to_none=True)
            if r > 0 or a.reps == 0:
                best = min(best, s)
        res = {"mode": "train", "batch": a.batch, "seq": a.seq, "seconds": best,
               "tokens_per_s": a.batch * a.seq / best}
    print(json.dumps(res))


if __name__ == "__main__":
    main()
