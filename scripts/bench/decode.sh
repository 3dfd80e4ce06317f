#!/usr/bin/env bash
# Decoding speed of the policy (issue 17): SmolLM2-135M-Instruct, 2 threads, one prompt, 128 greedy
# tokens.
#   batch 1:       strata fp32 / bf16 / int8 (bench/policy_bench --dtype) against llama.cpp
#                  (llama-cpp-python, pinned below) on the shipped Q4_1 GGUF and on a Q8_0 GGUF
#                  written by export_gguf;
#   batch 16, 64:  strata against transformers' generate in the same precision (bench/policy_hf.py).
# and, with --rl, the rollout phase of an RL step with int8 rollouts against bf16 ones: two
# grpo_train runs of the demo (configs/demo.json, reduced: see RL_SETS) from the demo's warm start,
# bf16 and int8 rollouts, the same seed; their reward curves go to docs/results/.
#
#   [RL_STEPS=20] [RL_PRECISIONS="bf16 int8"] [DECODE_PARTS="strata baselines"] [DECODE_BATCHES="16 64"] scripts/bench/decode.sh [--rl DEMO_RUN_DIR] [--out DIR]
#     DEMO_RUN_DIR   a finished scripts/demo.sh run (warm/model, world/, index/), e.g. runs/demo
#
# Prints one Markdown table and the closing line
#   decode: b1_vs_llamacpp_q8=... b16_vs_hf=... b64_vs_hf=... rollout_step_int8_vs_bf16=...
# (ratios > 1: strata is faster; b1 compares strata's fastest precision, b16/b64 bf16 against
# transformers in bf16, the rollout ratio is the median bf16 rollout phase / the median int8 one).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="$ROOT/build/bin"
PY="${PYTHON:-python3}"
LLAMA_CPP_PYTHON_VERSION=0.3.16
MODEL="${STRATA_SMOLLM2:-$HOME/.cache/strata/models/smollm2-135m-instruct}"
GGUF_DIR="$HOME/.cache/strata/gguf"
OUT="$ROOT/runs/bench_decode"
RL_RUN=""
THREADS=2
TOKENS=128
while [[ $# -gt 0 ]]; do
  case "$1" in
    --rl) RL_RUN="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "decode.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
mkdir -p "$OUT"
[[ -d "$MODEL" ]] || { echo "decode.sh: no SmolLM2 at $MODEL (scripts/setup.sh imports it)" >&2; exit 2; }

# ---- the RL step: bf16 against int8 rollouts (long; started first when asked) ----
if [[ -n "$RL_RUN" ]]; then
  for need in warm/model world/train.jsonl index; do
    [[ -e "$RL_RUN/$need" ]] || { echo "decode.sh: --rl $RL_RUN has no $need (run scripts/demo.sh)" >&2; exit 2; }
  done
  rm -f "$OUT/daemon.port"
  "$BIN/retrieval_server" --index "$RL_RUN/index" --port 0 --port-file "$OUT/daemon.port" \
    --log-file "$OUT/daemon.log" --log-level warn &
  DAEMON=$!
  trap 'kill $DAEMON 2>/dev/null || true' EXIT
  for _ in $(seq 100); do [[ -s "$OUT/daemon.port" ]] && break; sleep 0.1; done
  URL="http://127.0.0.1:$(cat "$OUT/daemon.port")/retrieve"
  # Reduced from configs/demo.json (8 prompts x 5 samples, 12 steps) so that both runs fit an hour on
  # 2 shared cores: RL_STEPS (default 20) steps of 4 prompts x 5 samples.
  RL_SETS=(--set steps="${RL_STEPS:-20}" --set prompts_per_step=4 --set save_every=0 --set rollout.max_batch=20
           --set update.mini_batch=20)
  for rp in ${RL_PRECISIONS:-bf16 int8}; do  # RL_PRECISIONS=int8 adds the int8 run to an earlier bf16 one
    rm -rf "$OUT/rl_$rp"
    "$BIN/grpo_train" --config "$ROOT/configs/demo.json" --set "retriever=$URL" --set "model=$RL_RUN/warm/model" \
      --set "train_data=$RL_RUN/world/train.jsonl" --set "out_dir=$OUT/rl_$rp" --set "rollout_precision=$rp" \
      "${RL_SETS[@]}" > "$OUT/rl_$rp.log" 2>&1
  done
  kill $DAEMON 2>/dev/null || true
  "$PY" "$ROOT/scripts/report.py" curves --out "$ROOT/docs/results/rollout_int8_vs_bf16.png" \
    "bf16 rollouts=$OUT/rl_bf16" "int8 rollouts + TIS=$OUT/rl_int8" > /dev/null || true
fi

# ---- decoding: batch 1 against llama.cpp, batch 16 and 64 against transformers ----
"$PY" -c "import llama_cpp" 2>/dev/null ||
  "$PY" -m pip install -q "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION"  # builds llama.cpp from source once
"$PY" -c "import transformers, safetensors" 2>/dev/null ||
  "$PY" -m pip install -q transformers==5.23.0 safetensors==0.8.0
Q41="$GGUF_DIR/SmolLM2-135M-Instruct.Q4_1.gguf"
Q80="$OUT/smollm2-135m-instruct.Q8_0.gguf"
[[ -f "$Q80" ]] || "$BIN/export_gguf" --model "$MODEL" --out "$Q80" --type q8_0 --log-level warn
# One prompt for everyone, as token ids (the GGUFs carry the same vocabulary).
IDS=$("$PY" - "$MODEL" <<'PY'
import sys
from tokenizers import Tokenizer
t = Tokenizer.from_file(sys.argv[1] + "/tokenizer.json")
text = ("<|im_start|>user\nWho wrote the novel that the film Blade Runner is based on, and in which year "
        "was it published?<|im_end|>\n<|im_start|>assistant\n")
print(",".join(str(i) for i in t.encode(text, add_special_tokens=False).ids))
PY
)
RES="$OUT/decode.jsonl"
# DECODE_PARTS="strata baselines" (default both); a run of one part appends to the other's results.
PARTS="${DECODE_PARTS:-strata baselines}"
[[ "$PARTS" == "strata baselines" ]] && : > "$RES"
has() { [[ " $PARTS " == *" $1 "* ]]; }
strata() {  # batch dtype
  "$BIN/policy_bench" --model "$MODEL" --mode gen --batch "$1" --dtype "$2" --prompt-ids "$IDS" --new "$TOKENS" \
    --threads "$THREADS" --reps 1 --no-share |
    "$PY" -c "import json,sys; j=json.loads(sys.stdin.read()); j['who']='strata'; print(json.dumps(j))" >> "$RES"
}
hf() {  # batch dtype
  "$PY" "$ROOT/bench/policy_hf.py" --model "$MODEL" --mode gen --batch "$1" --dtype "$2" --prompt-ids "$IDS" \
    --new "$TOKENS" --threads "$THREADS" --reps 1 |
    "$PY" -c "import json,sys; j=json.loads(sys.stdin.read()); j['who']='transformers'; j['dtype']='$2'; print(json.dumps(j))" >> "$RES"
}
llama() {  # gguf label
  "$PY" - "$1" "$2" "$IDS" "$TOKENS" "$THREADS" >> "$RES" <<'PY'
import json, sys, time
from llama_cpp import Llama
path, label, ids, new, threads = sys.argv[1], sys.argv[2], [int(x) for x in sys.argv[3].split(",")], int(sys.argv[4]), int(sys.argv[5])
llm = Llama(model_path=path, n_ctx=512, n_threads=threads, n_threads_batch=threads, verbose=False)
best = float("inf")
for rep in range(2):  # one warm-up, one timed (as policy_bench --reps 1)
    llm.reset()
    t0 = time.perf_counter()
    n = 0
    for _ in llm.generate(ids, top_k=1, temp=0.0, reset=True):  # greedy; runs past EOS
        n += 1
        if n == new:
            break
    s = time.perf_counter() - t0
    if rep > 0:
        best = min(best, s)
print(json.dumps({"who": "llama.cpp", "dtype": label, "batch": 1, "new": new, "seconds": best, "tokens_per_s": new / best}))
PY
}
if has strata; then for dt in float32 bfloat16 int8; do strata 1 "$dt"; done; fi
if has baselines; then llama "$Q41" Q4_1; llama "$Q80" Q8_0; fi
for b in ${DECODE_BATCHES:-16 64}; do
  if has strata; then for dt in float32 bfloat16 int8; do strata "$b" "$dt"; done; fi
  if has baselines; then for dt in float32 bfloat16; do hf "$b" "$dt"; done; fi
done

"$PY" - "$RES" "$OUT" "$THREADS" "$TOKENS" "$(date -u +%F)" "$(lscpu | sed -n 's/^Model name: *//p' | head -1)" <<'PY'
import json, os, sys
res, out, threads, tokens, day, cpu = sys.argv[1:7]
rows = [json.loads(l) for l in open(res) if l.strip()]
def rate(who, dtype, batch):
    for r in rows:
        if r["who"] == who and r["dtype"] == dtype and r["batch"] == batch:
            return r["tokens_per_s"]
    return float("nan")
plen = next((r["prompt_len"] for r in rows if r.get("prompt_len")), "?")
print(f"SmolLM2-135M-Instruct, {threads} threads, one {plen}-token chat prompt, "
      f"{tokens} greedy tokens per sequence; generated tokens/s (prefill included); {cpu}, {day}\n")
print("| batch | strata fp32 | strata bf16 | strata int8 | llama.cpp Q4_1 | llama.cpp Q8_0 | transformers fp32 | transformers bf16 |")
print("| --- | --- | --- | --- | --- | --- | --- | --- |")
for b in (1, 16, 64):
    cells = [rate("strata", d, b) for d in ("float32", "bfloat16", "int8")]
    cells += [rate("llama.cpp", q, b) for q in ("Q4_1", "Q8_0")]
    cells += [rate("transformers", d, b) for d in ("float32", "bfloat16")]
    print(f"| {b} | " + " | ".join("-" if c != c else f"{c:.1f}" for c in cells) + " |")
best1 = max(rate("strata", d, 1) for d in ("float32", "bfloat16", "int8"))
b1 = best1 / rate("llama.cpp", "Q8_0", 1)
b16 = rate("strata", "bfloat16", 16) / rate("transformers", "bfloat16", 16)
b64 = rate("strata", "bfloat16", 64) / rate("transformers", "bfloat16", 64)
step = "n/a"
def rollout_seconds(run):
    p = os.path.join(out, run, "metrics.jsonl")
    if not os.path.exists(p):
        return []
    return [json.loads(l)["time/rollout_s"] for l in open(p) if l.strip()]
bfs, i8s = rollout_seconds("rl_bf16"), rollout_seconds("rl_int8")
n = min(len(bfs), len(i8s))  # the steps both runs finished
if n:
    # Medians of the per-step rollout seconds: a build on the shared cores inflates single steps.
    med = lambda v: sorted(v)[len(v) // 2] if len(v) % 2 else sum(sorted(v)[len(v) // 2 - 1:len(v) // 2 + 1]) / 2
    bf, i8 = med(bfs[:n]), med(i8s[:n])
    step = f"{bf / i8:.2f}"
    print(f"\nRL rollout phase, steps 1-{n}: median {bf:.1f} s per step with bf16 rollouts, {i8:.1f} s with int8 "
          f"(sums {sum(bfs[:n]):.0f} s and {sum(i8s[:n]):.0f} s)")
print(f"\ndecode: b1_vs_llamacpp_q8={b1:.2f} b16_vs_hf={b16:.2f} b64_vs_hf={b64:.2f} rollout_step_int8_vs_bf16={step}")
PY
