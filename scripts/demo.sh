#!/usr/bin/env bash
# The main job on the built-in default, with no downloads of models or data.
#
# Today it builds strata, makes the built-in QA world, indexes it, serves it with the retrieval
# daemon (stopped on exit, Ctrl-C or error), trains a tokenizer, makes the tiny policy and lets it
# generate. The trainer programs are still missing (see "Status" in README.md); the script says so
# at the end instead of pretending to train.
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

step "BM25 index and the retrieval daemon (Search-R1 API)"
"$BIN/build_index" --corpus "$RUN_DIR/world/corpus.jsonl" --out "$RUN_DIR/index"
rm -f "$RUN_DIR/daemon.port"
"$BIN/retrieval_server" --index "$RUN_DIR/index" --port 0 --port-file "$RUN_DIR/daemon.port" \
  --log-file "$RUN_DIR/daemon.log" --log-level warn &
DAEMON=$!
trap 'kill "$DAEMON" 2>/dev/null; wait "$DAEMON" 2>/dev/null' EXIT INT TERM
for _ in $(seq 100); do [[ -s "$RUN_DIR/daemon.port" ]] && break; sleep 0.1; done
PORT=$(cat "$RUN_DIR/daemon.port")
QUESTION=$(python3 -c "import json,sys; print(json.loads(open(sys.argv[1]).readline())['entities'][0])" "$RUN_DIR/world/test.jsonl")
echo "  daemon on 127.0.0.1:$PORT; POST /retrieve {\"queries\": [\"$QUESTION\"], \"topk\": 2}:"
curl -s "http://127.0.0.1:$PORT/retrieve" -d "{\"queries\": [\"$QUESTION\"], \"topk\": 2, \"return_scores\": true}" |
  python3 -c "import json,sys; r=json.load(sys.stdin)['result'][0]; [print(f\"    {d['score']:.2f}  {d['document']['contents'][:100]!r}\") for d in r]"

step "a tokenizer trained on the world, and the tiny Qwen2-shaped policy (random weights)"
"$BIN/train_tokenizer" --input "$RUN_DIR/world/corpus.jsonl" --input "$RUN_DIR/world/train.jsonl" \
  --vocab-size 4096 --out "$RUN_DIR/tiny/tokenizer.json"
"$BIN/make_tiny_model" --tokenizer "$RUN_DIR/tiny" --out "$RUN_DIR/tiny" --seed 1
"$BIN/generate" --model "$RUN_DIR/tiny" --prompt "Question: Who founded Befo Studios?" \
  --max-new-tokens 16 --temperature 0 --threads 1 | cut -c1-240

step "two steps of Stratified GRPO with the untrained policy (configs/demo.json)"
(cd "$ROOT" && "$BIN/grpo_train" --config configs/demo.json --set "retriever=http://127.0.0.1:$PORT/retrieve" \
  --set "model=$RUN_DIR/tiny" --set "train_data=$RUN_DIR/world/train.jsonl" --set "out_dir=$RUN_DIR/grpo")
echo "  logs: $RUN_DIR/grpo/metrics.jsonl, TensorBoard: $RUN_DIR/grpo/tb, rollouts: $RUN_DIR/grpo/rollouts"
echo "  (an untrained policy never searches or answers, so its reward is 0 and nothing is learnt)"

step "LibTorch runtime (BLAS, threads, CUDA, GEMM speed)"
"$BIN/torch_info" --n 512 --reps 3

step "not there yet"
cat <<'TXT'
  strata cannot yet show an agent learning. The warm start (demonstrations + SFT) exists as a
  library but not as a program, so the policy above is untrained. Still missing:
    - grpo_train: periodic checkpoints and exact --resume, LR schedules, bf16 on CUDA
    - sft_train, evaluate, and the full demo (warm start, train, evaluate before/after)
    - the SAN-vs-GRPO experiment
TXT
