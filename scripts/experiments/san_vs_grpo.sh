#!/usr/bin/env bash
# The SAN-vs-GRPO experiment on the built-in world: GRPO, Stratified GRPO (alpha = 0.6) and SAN
# alone (alpha = 1) trained from the same warm start with the same budget, several seeds each,
# then each evaluated (greedy) on the world's test split. Writes docs/results/san_vs_grpo.md and
# its plots (reward curves with seed bands, reward and bias by stratum).
#
#   scripts/experiments/san_vs_grpo.sh              3 seeds, the demo's budget (configs/demo.json)
#   SEEDS="1 2 3 4 5" STEPS=30 JOBS=2 scripts/experiments/san_vs_grpo.sh
#   STEPS=12 LIMIT=200 JOBS=1 THREADS=2 ...         a shorter budget for a 2-core CPU
#   DEVICE=cuda JOBS=9 scripts/experiments/san_vs_grpo.sh   every run on the GPU at once
#
# It needs the warm start and world of scripts/demo.sh (run that first; RUN_DIR=runs/demo by
# default). Runs go to $RUN_DIR/san_vs_grpo/METHOD/seedN; each writes its own logs, so a run that
# finished (its final/ exists) is not redone. JOBS runs go side by side, THREADS torch threads each.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="${STRATA_BUILD_DIR:-$ROOT/build}/bin"
RUN_DIR="${STRATA_DEMO_DIR:-$ROOT/runs/demo}"
OUT="$RUN_DIR/san_vs_grpo"
SEEDS="${SEEDS:-1 2 3}"
STEPS="${STEPS:-}"
JOBS="${JOBS:-2}"
THREADS="${THREADS:-1}"
LIMIT="${LIMIT:-200}"  # test questions per evaluation, as scripts/demo.sh
# Evaluation as in scripts/demo.sh: greedy (the config's rollout samples at temperature 1), bf16.
EVAL_ARGS=(--limit "$LIMIT" --temperature 0 --max-batch 25)
[[ "${DEVICE:-cpu}" == cpu ]] && EVAL_ARGS+=(--dtype bfloat16)
DEVICE="${DEVICE:-cpu}"
RESULTS="${RESULTS:-$ROOT/docs/results}"
PY="${PYTHON:-python3}"
CONFIG="$ROOT/configs/demo.json"

[[ -f "$RUN_DIR/warm/DONE" ]] || { echo "no warm start in $RUN_DIR/warm: run scripts/demo.sh first" >&2; exit 2; }
mkdir -p "$OUT" "$RESULTS"
T0=$(date +%s)

"$BIN/build_index" --corpus "$RUN_DIR/world/corpus.jsonl" --out "$RUN_DIR/index" --log-level warn
rm -f "$OUT/daemon.port"
"$BIN/retrieval_server" --index "$RUN_DIR/index" --port 0 --port-file "$OUT/daemon.port" \
  --log-file "$OUT/daemon.log" --log-level warn &
DAEMON=$!
trap 'kill "$DAEMON" 2>/dev/null || true; wait "$DAEMON" 2>/dev/null || true' EXIT
trap 'exit 130' INT TERM
for _ in $(seq 100); do [[ -s "$OUT/daemon.port" ]] && break; sleep 0.1; done
URL="http://127.0.0.1:$(cat "$OUT/daemon.port")/retrieve"

# method name -> grpo_train settings
declare -A METHOD=(
  [grpo]="--set advantage.estimator=grpo"
  [stratified]="--set advantage.estimator=stratified --set advantage.alpha=0.6"
  [san]="--set advantage.estimator=stratified --set advantage.alpha=1.0"
)

one_run() {  # METHOD SEED
  local m=$1 s=$2 d="$OUT/$1/seed$2"
  if [[ ! -f "$d/final/config.json" ]]; then
    rm -rf "$d"
    mkdir -p "$d"
    # shellcheck disable=SC2086
    "$BIN/grpo_train" --config "$CONFIG" ${METHOD[$m]} --set "seed=$s" --set "threads=$THREADS" --set "device=$DEVICE" \
      --set "model=$RUN_DIR/warm/model" --set "train_data=$RUN_DIR/world/train.jsonl" \
      --set "retriever=$URL" --set "out_dir=$d" ${STEPS:+--set steps=$STEPS} \
      --log-level warn > "$d/train.log" 2>&1 || { echo "  $m seed $s: training failed, see $d/train.log" >&2; return 1; }
  fi
  if [[ ! -f "$d/eval/summary.json" ]]; then
    "$BIN/evaluate" --model "$d/final" --data "$RUN_DIR/world/test.jsonl" --retriever "$URL" \
      --config "$CONFIG" --threads "$THREADS" --device "$DEVICE" "${EVAL_ARGS[@]}" --out "$d/eval" > "$d/eval.log" 2>&1 ||
      { echo "  $m seed $s: evaluation failed, see $d/eval.log" >&2; return 1; }
  fi
  echo "  [$(( $(date +%s) - T0 ))s] $m seed $s done"
}

echo "== warm start baseline (greedy, test split)"
if [[ ! -f "$OUT/warm_eval/summary.json" ]]; then
  "$BIN/evaluate" --model "$RUN_DIR/warm/model" --data "$RUN_DIR/world/test.jsonl" --retriever "$URL" \
    --config "$CONFIG" --threads "$THREADS" --device "$DEVICE" "${EVAL_ARGS[@]}" --out "$OUT/warm_eval" > "$OUT/warm_eval.log" 2>&1
fi

echo "== ${#METHOD[@]} methods x seeds ($SEEDS), $JOBS at a time"
pids=()
for s in $SEEDS; do
  for m in grpo stratified san; do
    one_run "$m" "$s" &
    pids+=($!)
    while (($(jobs -rp | wc -l) > JOBS)); do sleep 1; done  # the daemon is one of the jobs
  done
done
fail=0
for p in "${pids[@]}"; do wait "$p" || fail=1; done
((fail == 0)) || { echo "some runs failed" >&2; exit 1; }
SECS=$(( $(date +%s) - T0 ))

echo "== results"
"$PY" "$ROOT/scripts/experiments/summarize.py" --out "$OUT" --results "$RESULTS" --seconds "$SECS" \
  ${MACHINE:+--machine "$MACHINE"} --command "SEEDS=\"$SEEDS\" ${STEPS:+STEPS=$STEPS }LIMIT=$LIMIT JOBS=$JOBS THREADS=$THREADS DEVICE=$DEVICE scripts/experiments/san_vs_grpo.sh"
