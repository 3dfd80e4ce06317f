#!/usr/bin/env bash
# The main job on the built-in default, with no downloads of models or data.
#
# Today strata has its foundation only: this script builds it, makes the built-in QA world and
# reports the LibTorch runtime. The retrieval daemon, the policy, the rollout engine, the
# Stratified GRPO trainer and evaluation are still missing (see "Status" in README.md); the
# script says so at the end instead of pretending to train.
#
#   scripts/demo.sh                 everything under ./runs/demo
#   STRATA_DEMO_DIR=dir             elsewhere
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${STRATA_BUILD_DIR:-$ROOT/build}/bin"
RUN_DIR="${STRATA_DEMO_DIR:-$ROOT/runs/demo}"

step() { printf '\n== %s\n' "$*"; }

step "set-up (installs and builds when needed)"
"$ROOT/scripts/setup.sh"

step "the built-in QA world -> $RUN_DIR/world"
mkdir -p "$RUN_DIR"
"$BIN/make_world" --out "$RUN_DIR/world" --seed 1
python3 - "$RUN_DIR/world" <<'PY'
import json, sys, collections
d = sys.argv[1]
for split in ("train", "dev", "test"):
    hops = collections.Counter(json.loads(l)["hops"] for l in open(f"{d}/{split}.jsonl"))
    print(f"  {split:5s} " + "  ".join(f"{h}-hop: {hops[h]:4d}" for h in sorted(hops)))
n = sum(1 for _ in open(f"{d}/corpus.jsonl"))
print(f"  corpus: {n} passages")
q = json.loads(open(f"{d}/test.jsonl").readline())
print(f"  e.g. test question: {q['question']!r} -> {q['golden_answers']}")
PY

step "LibTorch runtime (BLAS, threads, CUDA, GEMM speed)"
"$BIN/torch_info" --n 512 --reps 3

step "not there yet"
cat <<'TXT'
  strata cannot train yet. Still missing, in the order they will land:
    - retrieval: build_index + retrieval_server (BM25, Search-R1 API)
    - the policy LLM in LibTorch (HF checkpoints, tokenizer, generation)
    - the search environment and async rollout engine
    - grpo_train (Stratified GRPO / GRPO)
    - sft_train warm start, evaluate, and the full demo
  Nothing above was trained; the world files are ready for those steps.
TXT
