#!/usr/bin/env python3
"""Loads a checkpoint (e.g. one strata saved) with transformers and checks its logits against a
ref.safetensors written by make_ref_model.py. Exit code 0 when max |diff| <= tol for every
prompt, 1 otherwise.

usage: check_model_load.py MODEL_DIR REF_FILE [TOL]
"""
import sys

import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM


@torch.no_grad()
def main():
    model_dir, ref_file = sys.argv[1], sys.argv[2]
    tol = float(sys.argv[3]) if len(sys.argv) > 3 else 1e-4
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    ref = load_file(ref_file)
    worst = 0.0
    i = 0
    while f"prompt_{i}" in ref:
        logits = model(input_ids=ref[f"prompt_{i}"].unsqueeze(0)).logits[0].float()
        worst = max(worst, (logits - ref[f"logits_{i}"]).abs().max().item())
        i += 1
    print(f"prompts={i} max_abs_diff={worst:.3g}")
    sys.exit(0 if i > 0 and worst <= tol else 1)


if __name__ == "__main__":
    main()
