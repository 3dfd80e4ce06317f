#!/usr/bin/env bash
# scripts/demo.sh in quick mode (a tiny budget): every stage runs and leaves its files.
#   demo_quick_test.sh BUILD_DIR WORK_DIR
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="$1"
WORK="$2"
rm -rf "$WORK"
mkdir -p "$WORK"
log="$WORK/demo.log"
if ! STRATA_DEMO_QUICK=1 STRATA_DEMO_SKIP_SETUP=1 STRATA_BUILD_DIR="$BUILD" STRATA_DEMO_DIR="$WORK/run" \
    STRATA_NO_PROGRESS=1 bash "$ROOT/scripts/demo.sh" > "$log" 2>&1; then
  tail -40 "$log"
  echo "FAIL: scripts/demo.sh exited non-zero (log: $log)"
  exit 1
fi
fail=0
check() {  # DESCRIPTION TEST...
  local what=$1
  shift
  if "$@"; then echo "ok    $what"; else echo "FAIL  $what"; fail=1; fi
}
R="$WORK/run"
lines() { [[ -f "$1" ]] && wc -l < "$1" || echo 0; }
check "world written" test -s "$R/world/corpus.jsonl" -a -s "$R/world/test.jsonl"
check "index built" test -d "$R/index"
check "tokenizer and tiny model" test -s "$R/tiny/tokenizer.json" -a -s "$R/tiny/config.json"
check "warm start finished" test -f "$R/warm/DONE" -a -s "$R/warm/model/model.safetensors"
check "demonstrations written" test "$(lines "$R/warm/demonstrations.jsonl")" -eq 24
check "evaluation before RL" test -s "$R/eval_before/summary.json" -a "$(lines "$R/eval_before/predictions.jsonl")" -eq 16
check "two RL steps logged" test "$(lines "$R/grpo/metrics.jsonl")" -eq 2
check "checkpoints every step" test -d "$R/grpo/checkpoints/step_000002"
check "final policy saved" test -s "$R/grpo/final/model.safetensors"
check "TensorBoard events" bash -c "ls '$R/grpo/tb'/events.out.tfevents.* >/dev/null"
check "rollouts files" test -s "$R/grpo/rollouts/step_000002.pb"
check "evaluation after RL" test -s "$R/eval_after/summary.json"
check "before/after table" grep -q "^ *all " "$R/before_after.txt"
for key in "warm start" "training logs" "rollouts" "checkpoints" "evaluations" "plots"; do
  check "closing block names '$key' once" test "$(grep -c "^  $key  " "$log")" -eq 1
done
check "daemon stopped on exit" bash -c "! pgrep -f '[r]etrieval_server --index $R/index' >/dev/null"
if python3 -c "import matplotlib" 2>/dev/null; then
  check "reward plot" test -s "$R/reward.png"
  check "strata plot" test -s "$R/strata.png"
fi
# A second run reuses the finished warm start.
STRATA_DEMO_QUICK=1 STRATA_DEMO_SKIP_SETUP=1 STRATA_BUILD_DIR="$BUILD" STRATA_DEMO_DIR="$R" \
  STRATA_NO_PROGRESS=1 bash "$ROOT/scripts/demo.sh" > "$WORK/demo2.log" 2>&1 || { tail -20 "$WORK/demo2.log"; fail=1; }
check "second run reuses the warm start" grep -q "warm start: reusing" "$WORK/demo2.log"
exit $fail
