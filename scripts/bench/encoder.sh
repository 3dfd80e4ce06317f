#!/usr/bin/env bash
# Dense encoder benchmark: strata's BERT encoder (agent/encoder.h, encoder_bench) against
# Hugging Face `transformers` (bench/encoder_hf.py) on the same model, passages, batch size,
# token limit and threads, in one run: passages/s for float32 and bf16 on each side.
# Model: all-MiniLM-L6-v2 as scripts/setup.sh unpacks it. Passages: the first BENCH_N of
# ../shared/data/real/wiki18_sample_1000.jsonl when present, else a built-in world's corpus.
#
#   flock /tmp/strata-bench.lock scripts/bench/encoder.sh      # ~2 min on 2 loaded cores
#
# Environment: STRATA_BUILD_DIR (default build/), BENCH_DIR (default /tmp/strata-bench-encoder),
# BENCH_N (passages, default 512), BENCH_BATCH (default 64), BENCH_MAX_LEN (default 256),
# BENCH_THREADS (default 2), STRATA_ENCODER (model folder). The last line is
#   encoder: fp32_vs_hf=<x> bf16_vs_hf_fp32=<y> strata_fp32_pps=<a> strata_bf16_pps=<b> hf_fp32_pps=<c> hf_bf16_pps=<d>
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD_DIR="${STRATA_BUILD_DIR:-$ROOT/build}"
WORK="${BENCH_DIR:-/tmp/strata-bench-encoder}"
N="${BENCH_N:-512}"
BATCH="${BENCH_BATCH:-64}"
MAXLEN="${BENCH_MAX_LEN:-256}"
THREADS="${BENCH_THREADS:-2}"
MODEL="${STRATA_ENCODER:-${STRATA_CACHE:-$HOME/.cache/strata}/models/all-minilm-l6-v2}"
PY="${PYTHON:-python3}"
BIN="$BUILD_DIR/bin"
log() { echo "[bench] $*" >&2; }

for b in encoder_bench make_world; do
  [[ -x "$BIN/$b" ]] || { echo "missing $BIN/$b: cmake --build $BUILD_DIR --target $b" >&2; exit 2; }
done
[[ -f "$MODEL/config.json" ]] || { echo "no encoder at $MODEL (run scripts/setup.sh)" >&2; exit 2; }
if ! "$PY" -c "import transformers, torch" 2>/dev/null; then
  log "installing transformers==5.23.0"
  "$PY" -m pip install -q transformers==5.23.0
fi
mkdir -p "$WORK"
CORPUS="${STRATA_SHARED_DIR:-$ROOT/../shared}/data/real/wiki18_sample_1000.jsonl"
if [[ ! -f "$CORPUS" ]]; then
  "$BIN/make_world" --out "$WORK/world" --seed 1 >/dev/null 2>&1
  CORPUS="$WORK/world/corpus.jsonl"
fi
log "model $MODEL, $N passages of $CORPUS, batch $BATCH, max_length $MAXLEN, $THREADS threads"
ARGS=(--model "$MODEL" --in "$CORPUS" --n "$N" --batch "$BATCH" --max-length "$MAXLEN" --threads "$THREADS")
: > "$WORK/results.jsonl"
for run in "strata" "strata --bf16" "hf" "hf --bf16"; do
  side="${run%% *}"; flag=""; [[ "$run" == *--bf16 ]] && flag="--bf16"
  if [[ "$side" == strata ]]; then
    "$BIN/encoder_bench" "${ARGS[@]}" $flag 2>/dev/null | tee -a "$WORK/results.jsonl"
  else
    "$PY" "$ROOT/bench/encoder_hf.py" "${ARGS[@]}" $flag 2>/dev/null | tee -a "$WORK/results.jsonl"
  fi
done
"$PY" - "$WORK/results.jsonl" <<'PY'
import json, sys
r = {(j["side"], j["dtype"]): j["passages_per_s"] for j in map(json.loads, open(sys.argv[1]))}
s32, s16 = r[("strata", "fp32")], r[("strata", "bf16")]
h32, h16 = r[("transformers", "fp32")], r[("transformers", "bf16")]
print(f"encoder: fp32_vs_hf={s32 / h32:.2f} bf16_vs_hf_fp32={s16 / h32:.2f} "
      f"strata_fp32_pps={s32:.1f} strata_bf16_pps={s16:.1f} hf_fp32_pps={h32:.1f} hf_bf16_pps={h16:.1f}")
PY
