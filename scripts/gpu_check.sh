#!/usr/bin/env bash
# The GPU check of grpo_train, for a machine with a CUDA GPU on which scripts/setup.sh has built
# strata (it builds the CUDA code paths when it finds nvcc and a GPU). About 3-4 minutes on one
# H100; it downloads nothing.
#
#   1. the LibTorch runtime (must say CUDA available) and the GPU;
#   2. every GPU test (CTest names with Cuda/GPU): CPU-vs-CUDA log-prob parity on a random model,
#      one PPO update in fp32 / bf16 / bf16_master, 3 grpo_train steps in each precision;
#   3. a fresh built-in world, its BM25 index and daemon, a tokenizer and the tiny policy (the early
#      stages of scripts/demo.sh, under a temporary folder);
#   4. 3 steps of `grpo_train --config configs/demo.json --set device=cuda` in fp32, bf16 and
#      bf16_master (and 1 CPU step for comparison), with the per-step rollout/update time split;
#   5. CPU-vs-CUDA parity of the log-probs of the step-1 rollouts batch (fp32, bf16 autocast,
#      bf16 weights).
# Exit status: 0 when everything passed, 1 otherwise (the summary says what failed).
#
#   scripts/gpu_check.sh
#   STRATA_BUILD_DIR=dir scripts/gpu_check.sh      a build elsewhere than ./build
#   STRATA_GPU_CHECK_KEEP=1                        keep the temporary folder
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${STRATA_BUILD_DIR:-$ROOT/build}"
BIN="$BUILD/bin"
WORK="$(mktemp -d /tmp/strata_gpu_check.XXXXXX)"
export STRATA_NO_PROGRESS=1
FAILED=()
DAEMON=""
cleanup() {
  [[ -n "$DAEMON" ]] && kill "$DAEMON" 2>/dev/null && wait "$DAEMON" 2>/dev/null
  if [[ "${STRATA_GPU_CHECK_KEEP:-0}" == 1 ]]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
step() { printf '\n== %s\n' "$*"; }
fail() { FAILED+=("$*"); printf '  FAILED: %s\n' "$*"; }
START=$(date +%s)

step "runtime"
for b in torch_info grpo_train make_world build_index retrieval_server train_tokenizer make_tiny_model test_rl; do
  [[ -x "$BIN/$b" ]] || { echo "missing $BIN/$b: run scripts/setup.sh first"; exit 1; }
done
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "  (no nvidia-smi)"
"$BIN/torch_info" --n 4096 --reps 3 --device auto | tee "$WORK/torch_info.txt"
if ! grep -qE "^cuda +compiled=yes available=yes" "$WORK/torch_info.txt"; then
  fail "torch_info reports no usable CUDA device (see 'cuda' above; compiled=no: rerun scripts/setup.sh where nvcc is found)"
fi

step "GPU tests (CTest: names with Cuda/GPU)"
if ctest --test-dir "$BUILD" -R 'Cuda|CUDA|Gpu|GPU' --timeout 300 -V >"$WORK/gpu_tests.log" 2>&1; then
  :
else
  fail "GPU tests (log below)"
  grep -E "Failure|FAILED|Expected|Which is|actual|error" "$WORK/gpu_tests.log" | head -40
fi
grep -E "\[parity\]|\[cuda\]" "$WORK/gpu_tests.log" | sed 's/^[0-9]*: /  /'
grep -E "tests passed|Test +#.*(Passed|Failed|Skipped|\*\*\*)" "$WORK/gpu_tests.log" | sed 's/^/  /'
grep -q "Skipped" "$WORK/gpu_tests.log" && grep -B2 "Skipped" "$WORK/gpu_tests.log" | grep -iE "no CUDA" | head -1 |
  sed 's/^/  note: GPU tests skipped themselves: /'

step "built-in world, BM25 daemon, tokenizer, tiny policy -> $WORK"
"$BIN/make_world" --out "$WORK/world" --seed 1 --log-level warn
"$BIN/build_index" --corpus "$WORK/world/corpus.jsonl" --out "$WORK/index" --log-level warn >/dev/null
"$BIN/retrieval_server" --index "$WORK/index" --port 0 --port-file "$WORK/daemon.port" \
  --log-file "$WORK/daemon.log" --log-level warn &
DAEMON=$!
for _ in $(seq 100); do [[ -s "$WORK/daemon.port" ]] && break; sleep 0.1; done
PORT=$(cat "$WORK/daemon.port")
"$BIN/train_tokenizer" --input "$WORK/world/corpus.jsonl" --input "$WORK/world/train.jsonl" \
  --vocab-size 4096 --out "$WORK/tiny/tokenizer.json" --log-level warn >/dev/null
"$BIN/make_tiny_model" --tokenizer "$WORK/tiny" --out "$WORK/tiny" --seed 1 --log-level warn >/dev/null
echo "  daemon on 127.0.0.1:$PORT; tiny policy in $WORK/tiny"

# The untrained policy earns reward 0 everywhere, so the zero-advantage guard would skip every
# update; it is turned off here so that the update's time is measured. KL is turned on (the demo
# has kl_coef 0) so that the reference forward runs and step 1's KL can be checked.
run_grpo() {  # name device precision steps threads
  local name=$1 device=$2 prec=$3 steps=$4 threads=$5
  local t0=$(date +%s.%N)
  if ! (cd "$ROOT" && "$BIN/grpo_train" --config configs/demo.json \
      --set "device=$device" --set "precision=$prec" --set "steps=$steps" --set "threads=$threads" \
      --set "retriever=http://127.0.0.1:$PORT/retrieve" --set "model=$WORK/tiny" \
      --set "train_data=$WORK/world/train.jsonl" --set "out_dir=$WORK/$name" \
      --set update.skip_zero_advantage=false --set loss.kl_coef=0.001 >"$WORK/$name.log" 2>&1); then
    fail "grpo_train $name"
    tail -20 "$WORK/$name.log"
    return
  fi
  python3 - "$WORK/$name/metrics.jsonl" "$name" "$(python3 -c "import time;print(time.time()-$t0)" 2>/dev/null || echo 0)" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"  {sys.argv[2]}: {len(rows)} steps, {float(sys.argv[3]):.1f} s with start-up")
print("    step  rollout_s  update_s   tok/s  reward      kl  grad_norm  skipped")
for r in rows:
    print(f"    {r['step']:4d}  {r['time/rollout_s']:9.2f}  {r['time/update_s']:8.2f}  {r['rollout/tokens_per_s']:6.0f}"
          f"  {r['reward/mean']:6.3f}  {r.get('loss/kl', float('nan')):6.4f}  {r.get('grad_norm', float('nan')):9.3g}"
          f"  {int(r['update/skipped_zero_adv'])}")
PY
}

step "grpo_train --config configs/demo.json --set device=cuda: 3 steps per precision (+1 CPU step)"
run_grpo cuda_fp32 cuda fp32 3 4
run_grpo cuda_bf16 cuda bf16 3 4
run_grpo cuda_bf16_master cuda bf16_master 3 4
run_grpo cpu_fp32 cpu fp32 1 4
# Before the first update the policy equals the reference; in bf16 both score under the same
# autocast, so step 1's KL is only the noise of differently padded micro-batches.
for p in fp32 bf16 bf16_master; do
  f="$WORK/cuda_$p/metrics.jsonl"
  [[ -f "$f" ]] || continue
  python3 - "$f" "$p" <<'PY' || fail "$p: KL of step 1 is not ~0"
import json, sys
r = json.loads(open(sys.argv[1]).readline())
print(f"  {sys.argv[2]}: step-1 KL {r['loss/kl']:.3g} (expected < 1e-4)")
sys.exit(0 if abs(r["loss/kl"]) < 1e-4 else 1)
PY
done

step "CPU-vs-CUDA log-prob parity on the step-1 rollouts batch"
if [[ -f "$WORK/cuda_fp32/rollouts/step_000001.pb" ]]; then
  if STRATA_PARITY_MODEL="$WORK/tiny" STRATA_PARITY_ROLLOUTS="$WORK/cuda_fp32/rollouts/step_000001.pb" \
     "$BIN/test_rl" --gtest_filter='GrpoStepCuda.LogprobParityOnARolloutsFile' >"$WORK/parity.log" 2>&1; then
    grep -E "\[parity\]|SKIPPED" "$WORK/parity.log" | sed 's/^/  /'
  else
    fail "parity on the rollouts batch"
    grep -E "\[parity\]|Failure|Expected|Which is|actual" "$WORK/parity.log" | sed 's/^/  /'
  fi
else
  fail "no rollouts file from the CUDA fp32 run"
fi

step "summary ($(($(date +%s) - START)) s)"
if ((${#FAILED[@]})); then
  printf '  FAILED: %s\n' "${FAILED[@]}"
  exit 1
fi
echo "  all GPU checks passed"
