#!/usr/bin/env bash
# Policy-model benchmark: strata's C++ generation engine and training step against Python
# `transformers` / PyTorch on the same checkpoints, threads and shapes.
#   - generation: greedy, 128-token random prompts, exactly 128 new tokens, batch 1/16/64,
#     strata (KV cache, continuous batching) vs transformers.generate (eager attention, KV cache)
#   - training: forward + backward of per-token log-probs, [4, 256] tokens, vs PyTorch eager
#   - the training step's GFLOP/s (6 * params * tokens) as a share of the measured float32 GEMM
#     peak (agent/runtime.h bench_matmul, n = 1024) at the same thread count
# Models (random weights, written by make_tiny_model): "tiny" (the default policy shape:
# hidden 256, 4 layers, vocab 8192) and "25m" (hidden 512, 6 layers, 8 heads / 2 KV heads,
# MLP 1408, vocab 16384, 25.3M parameters).
#
#   scripts/bench/policy.sh                       # ~10 min on 2 loaded cores
#   BENCH_BATCHES="1 16" scripts/bench/policy.sh  # quicker
#
# Environment: STRATA_BUILD_DIR (default build/), BENCH_DIR (default /tmp/strata-bench-policy),
# BENCH_THREADS (default 1: intra-op threads for both sides; on a shared machine more threads
# mostly measure contention), BENCH_REPS (timed repetitions after one warm-up, best kept;
# default 1), BENCH_BATCHES (default "1 16 64"). The last line is
#   policy: gen_vs_hf_b64=<x> gen_vs_hf_b1=<y> train_vs_torch=<z> train_peak_frac=<f>
# (strata / baseline tokens/s on the 25m model).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD_DIR="${STRATA_BUILD_DIR:-$ROOT/build}"
WORK="${BENCH_DIR:-/tmp/strata-bench-policy}"
THREADS="${BENCH_THREADS:-1}"
REPS="${BENCH_REPS:-1}"
BATCHES="${BENCH_BATCHES:-1 16 64}"
BIN="$BUILD_DIR/bin"
PY="${PYTHON:-python3}"
log() { echo "[bench] $*" >&2; }

for b in policy_bench make_tiny_model; do
  [[ -x "$BIN/$b" ]] || { echo "missing $BIN/$b: cmake --build $BUILD_DIR --target $b" >&2; exit 2; }
done
if ! "$PY" -c "import transformers, safetensors" 2>/dev/null; then
  log "installing transformers==5.23.0 safetensors==0.8.0"
  "$PY" -m pip install -q transformers==5.23.0 safetensors==0.8.0 numpy
fi
mkdir -p "$WORK"
export OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS"

[[ -f "$WORK/tiny/model.safetensors" ]] ||
  "$BIN/make_tiny_model" --vocab-size 8192 --out "$WORK/tiny" --seed 1
[[ -f "$WORK/25m/model.safetensors" ]] ||
  "$BIN/make_tiny_model" --vocab-size 16384 --hidden 512 --layers 6 --heads 8 --kv-heads 2 \
    --intermediate 1408 --out "$WORK/25m" --seed 1

RESULTS="$WORK/results.jsonl"
: > "$RESULTS"
run() {  # run SYSTEM MODEL ARGS... : appends {"system", "model", ...} to results.jsonl
  local system="$1" model="$2"; shift 2
  local out
  if [[ "$system" == strata ]]; then
    out=$("$BIN/policy_bench" --model "$WORK/$model" --threads "$THREADS" --reps "$REPS" "$@")
  else
    out=$("$PY" "$ROOT/bench/policy_hf.py" --model "$WORK/$model" --threads "$THREADS" --reps "$REPS" "$@" 2>/dev/null | tail -1)
  fi
  echo "$out" | "$PY" -c "import json,sys; d=json.loads(sys.stdin.read()); d.update(system='$system', model='$model'); print(json.dumps(d))" >> "$RESULTS"
  log "$system $model $*: $(tail -1 "$RESULTS")"
}

for model in tiny 25m; do
  for b in $BATCHES; do
    # Interleaved so that both sides see the same machine load.
    run strata "$model" --mode gen --batch "$b" --prompt-len 128 --new 128
    run hf "$model" --mode gen --batch "$b" --prompt-len 128 --new 128
  done
  run strata "$model" --mode train --batch 4 --seq 256
  run hf "$model" --mode train --batch 4 --seq 256
done
PEAK=$("$BIN/policy_bench" --mode peak --threads "$THREADS")
log "matmul peak: $PEAK"

"$PY" - "$RESULTS" "$PEAK" "$THREADS" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
peak = json.loads(sys.argv[2])["gflops"]
def get(system, model, mode, batch=None):
    for r in rows:
        if r["system"] == system and r["model"] == model and r["mode"] == mode and (batch is None or r["batch"] == batch):
            return r
    return None
print(f"threads={sys.argv[3]} matmul_peak_gflops={peak:.1f}")
print(f"{'model':6} {'what':12} {'strata tok/s':>13} {'baseline tok/s':>15} {'ratio':>7}")
for model in ("tiny", "25m"):
    for r in rows:
        if r["system"] != "strata" or r["model"] != model:
            continue
        h = get("hf", model, r["mode"], r["batch"])
        what = f"gen b{r['batch']}" if r["mode"] == "gen" else f"train {r['batch']}x{r['seq']}"
        ratio = r["tokens_per_s"] / h["tokens_per_s"] if h else float("nan")
        print(f"{model:6} {what:12} {r['tokens_per_s']:13.1f} {h['tokens_per_s'] if h else float('nan'):15.1f} {ratio:7.2f}")
def ratio(mode, batch=None):
    s, h = get("strata", "25m", mode, batch), get("hf", "25m", mode, batch)
    return s["tokens_per_s"] / h["tokens_per_s"] if s and h else float("nan")
train = get("strata", "25m", "train")
frac = train["gflops"] / peak if train else float("nan")
print(f"policy: gen_vs_hf_b64={ratio('gen', 64):.2f} gen_vs_hf_b1={ratio('gen', 1):.2f} "
      f"train_vs_torch={ratio('train'):.2f} train_peak_frac={frac:.2f}")
PYEOF
