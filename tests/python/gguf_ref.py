"""Reference side of strata's GGUF tests: the `gguf` package (gguf==0.19.0) and transformers'
GGUF loader (transformers==5.23.0, needs accelerate).

  gguf_ref.py dequant TYPE IN.bin OUT.bin
      raw blocks of ggml type TYPE -> float32 values (gguf.quants.dequantize)
  gguf_ref.py model FILE.gguf REQUEST.json OUT_DIR
      transformers loads FILE.gguf (dequantised, fp32) and writes, for REQUEST's
      {"prompts": [[ids]...], "greedy_tokens": N, "strings": [...]}:
        OUT_DIR/logits.safetensors   logits_<i>: [T_i, V] for each prompt
        OUT_DIR/result.json          {"greedy": [[ids]...], "ids": [[ids]...] for the strings,
                                      "ids_model_pre": the same with the GGUF's named
                                      pre-tokenizer restored}
"""
import json
import os
import sys

import numpy as np


def dequant(type_name, src, dst):
    import gguf
    qtype = gguf.GGMLQuantizationType[type_name]
    raw = np.fromfile(src, dtype=np.uint8)
    out = gguf.quants.dequantize(raw, qtype).astype(np.float32).reshape(-1)
    out.tofile(dst)


def model(path, request, out_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from safetensors.torch import save_file

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    req = json.load(open(request))
    d, f = os.path.split(os.path.abspath(path))
    result = {}
    if req.get("strings"):
        tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
        result["ids"] = [tok(s, add_special_tokens=False)["input_ids"] for s in req["strings"]]
        # The same tokenizer with the pre-tokenizer that tokenizer.ggml.pre names restored
        # (transformers' converter keeps only GPT-2's ByteLevel; SmolLM2's own tokenizer.json
        # splits digits first).
        import gguf
        from tokenizers import pre_tokenizers
        field = gguf.GGUFReader(path).fields.get("tokenizer.ggml.pre")
        pre = field.contents() if field is not None else "gpt2"
        if pre == "smollm":
            tok.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
                pre_tokenizers.Digits(individual_digits=True),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
        result["ids_model_pre"] = [tok(s, add_special_tokens=False)["input_ids"] for s in req["strings"]]
    if req.get("prompts"):
        m = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32)
        m.eval()
        logits, greedy = {}, []
        with torch.no_grad():
            for i, p in enumerate(req["prompts"]):
                ids = torch.tensor([p])
                logits[f"logits_{i}"] = m(ids).logits[0].float().contiguous()
                n = int(req.get("greedy_tokens", 0))
                if n > 0:
                    g = m.generate(ids, max_new_tokens=n, do_sample=False, eos_token_id=None,
                                   pad_token_id=0, attention_mask=torch.ones_like(ids))
                    greedy.append(g[0, len(p):].tolist())
        save_file(logits, os.path.join(out_dir, "logits.safetensors"))
        result["greedy"] = greedy
    json.dump(result, open(os.path.join(out_dir, "result.json"), "w"))


if __name__ == "__main__":
    if sys.argv[1] == "dequant":
        dequant(*sys.argv[2:5])
    elif sys.argv[1] == "model":
        model(*sys.argv[2:5])
    else:
        sys.exit(f"unknown mode {sys.argv[1]}")
