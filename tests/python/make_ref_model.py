#!/usr/bin/env python3
"""Reference checkpoints and outputs for strata's model parity tests.

Builds small randomly initialised Qwen2 and Llama (llama3 rope scaling) models with
`transformers`, saves them with save_pretrained (fp32, bf16, and a sharded fp32 save), and writes
for each a `ref.safetensors` with, per prompt i: `prompt_i` (int64 ids), `logits_i` ([T, V]
float32 logits of the prompt) and `greedy_i` (int64, a 32-token greedy continuation computed by
full recomputation, no cache).

usage: make_ref_model.py OUT_DIR
"""
import os
import sys

import torch
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

GREEDY_TOKENS = 32
VOCAB = 512


def prompts(seed):
    g = torch.Generator().manual_seed(seed)
    out = []
    for n in (5, 9, 13, 17):
        out.append(torch.randint(0, VOCAB, (n,), generator=g, dtype=torch.int64))
    return out


@torch.no_grad()
def reference(model, seed):
    model.eval()
    tensors = {}
    for i, p in enumerate(prompts(seed)):
        ids = p.unsqueeze(0)
        tensors[f"prompt_{i}"] = p.clone()
        tensors[f"logits_{i}"] = model(input_ids=ids).logits[0].float().contiguous()
        seq = ids
        for _ in range(GREEDY_TOKENS):
            nxt = model(input_ids=seq).logits[0, -1].argmax().view(1, 1)
            seq = torch.cat([seq, nxt], dim=1)
        tensors[f"greedy_{i}"] = seq[0, ids.shape[1]:].clone()
    return tensors


def bump_weights(model, seed):
    # transformers initialises norms to 1 and biases to 0; perturb them so parity tests see them.
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.add_(0.1 * torch.randn(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(0.05 * torch.randn(p.shape, generator=g))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(1234)

    qcfg = Qwen2Config(hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, vocab_size=VOCAB, max_position_embeddings=512,
                       rope_theta=10000.0, rms_norm_eps=1e-6, tie_word_embeddings=True,
                       bos_token_id=1, eos_token_id=2)
    q = Qwen2ForCausalLM(qcfg).float()
    bump_weights(q, 1)
    q.save_pretrained(os.path.join(out, "qwen2_f32"))
    save_file(reference(q, 10), os.path.join(out, "qwen2_f32", "ref.safetensors"))

    # bf16 save: the reference is the fp32 computation on bf16-rounded weights, as strata runs it on CPU.
    qb = Qwen2ForCausalLM(qcfg)
    qb.load_state_dict(q.state_dict())
    qb = qb.to(torch.bfloat16)
    qb.save_pretrained(os.path.join(out, "qwen2_bf16"))
    save_file(reference(qb.float(), 11), os.path.join(out, "qwen2_bf16", "ref.safetensors"))

    lcfg = LlamaConfig(hidden_size=64, intermediate_size=176, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, vocab_size=VOCAB, max_position_embeddings=2048,
                       rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                     "high_freq_factor": 4.0, "original_max_position_embeddings": 64},
                       rope_theta=500000.0, rms_norm_eps=1e-5, tie_word_embeddings=False,
                       attention_bias=False, bos_token_id=1, eos_token_id=[2, 3])
    llm = LlamaForCausalLM(lcfg).float()
    bump_weights(llm, 2)
    llm.save_pretrained(os.path.join(out, "llama_sharded"), max_shard_size="40KB")
    save_file(reference(llm, 12), os.path.join(out, "llama_sharded", "ref.safetensors"))
    assert os.path.exists(os.path.join(out, "llama_sharded", "model.safetensors.index.json")), "expected shards"
    print("ok", out)


if __name__ == "__main__":
    main()
