#!/usr/bin/env bash
# Data-parallel scaling of grpo_train (rl/distributed.h, docs/DISTRIBUTED.md): the same run on
# 1 rank and on N ranks under `torchrun --no-python` (Gloo on CPU), side by side, with the same
# global batch and the same cores in total (1 rank x N threads against N ranks x 1 thread; and
# 1 rank x 1 thread), and the N-rank run again with ZeRO-1 (update.zero_stage 1).
# A tiny random policy (make_tiny_model, 2 layers, hidden 256) on a small built-in world, one BM25
# daemon. The policy learns nothing; the point is the cost of the step and of the communication.
#
#   scripts/bench/scale.sh                          # 1 vs 2 ranks, 4 steps of 8 prompts x 4 samples
#   BENCH_RANKS=4 BENCH_STEPS=6 scripts/bench/scale.sh
#
# Environment: STRATA_BUILD_DIR (default build/), BENCH_DIR (default /tmp/strata-bench-scale),
# BENCH_RANKS (default 2), BENCH_STEPS (default 4), BENCH_DEVICE (default cpu; "cuda" puts every
# rank on cuda:LOCAL_RANK with NCCL, or set CUDA_VISIBLE_DEVICES to share one GPU), BENCH_ZERO
# (default 1: also the ZeRO-1 run). Steps/s leave out step 1 (warm-up); rollout tokens/s are the
# step's generated tokens over its rollout phase (the slowest rank's), steps 2.. .
# Communication comes from rank 0's closing log line (rl/trainer.cpp: seconds in collectives by
# kind, over the whole run, waits for the slower rank included), as shares of the summed step
# time: all-reduce + broadcast are the update's (gradients, the ZeRO-1 weights, a few sums), the
# all-gather is mostly the wait for the slower rank's rollouts before the batch is whole.
# The last line is
#   scale: ranks=N steps_per_s_1=<a> steps_per_s_N=<b> steps_per_s_Nr_vs_1r=<b/a> tokens_per_s_1=<c>
#          tokens_per_s_N=<d> comm_share=<f> update_comm_share=<u> zero1_steps_per_s=<z>
#          steps_per_s_1x1=<e> steps_per_s_Nr_vs_1x1=<b/e>
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="${STRATA_BUILD_DIR:-$ROOT/build}/bin"
WORK="${BENCH_DIR:-/tmp/strata-bench-scale}"
RANKS="${BENCH_RANKS:-2}"
STEPS="${BENCH_STEPS:-4}"
DEVICE="${BENCH_DEVICE:-cpu}"
ZERO="${BENCH_ZERO:-1}"
PY="${PYTHON:-python3}"
log() { echo "[bench] $*" >&2; }
for b in make_world build_index retrieval_server train_tokenizer make_tiny_model grpo_train; do
  [[ -x "$BIN/$b" ]] || { echo "missing $BIN/$b: cmake --build build --target $b" >&2; exit 2; }
done
# torchrun comes with the torch wheel (scripts/setup.sh); the module works where the script is not
# on PATH.
if command -v torchrun >/dev/null 2>&1; then TORCHRUN=(torchrun)
elif "$PY" -c 'import torch.distributed.run' 2>/dev/null; then TORCHRUN=("$PY" -m torch.distributed.run)
else echo "torchrun not found: it comes with the torch wheel (scripts/setup.sh)" >&2; exit 2; fi
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1 /proc/loadavg), $(date -u +%F)"

mkdir -p "$WORK"
if [[ ! -f "$WORK/tiny/config.json" ]]; then
  log "world, index, tokenizer and a tiny policy in $WORK"
  "$BIN/make_world" --out "$WORK/world" --seed 1 --entities 400 --train 64 --dev 8 --test 8 --log-level warn
  "$BIN/build_index" --corpus "$WORK/world/corpus.jsonl" --out "$WORK/index" --log-level warn
  "$BIN/train_tokenizer" -i "$WORK/world/corpus.jsonl" --vocab-size 2000 -o "$WORK/tiny/tokenizer.json" --log-level warn
  "$BIN/make_tiny_model" --tokenizer "$WORK/tiny" --out "$WORK/tiny" --hidden 256 --layers 2 --log-level warn
fi
rm -f "$WORK/daemon.port"
"$BIN/retrieval_server" --index "$WORK/index" --port 0 --port-file "$WORK/daemon.port" --log-level warn &
DAEMON=$!
trap 'kill $DAEMON 2>/dev/null || true' EXIT
for _ in $(seq 100); do [[ -s "$WORK/daemon.port" ]] && break; sleep 0.1; done
[[ -s "$WORK/daemon.port" ]] || { echo "the retrieval daemon did not start" >&2; exit 1; }
URL="http://127.0.0.1:$(cat "$WORK/daemon.port")/retrieve"

cat > "$WORK/scale.json" <<EOF
{
  "model": "$WORK/tiny", "train_data": "$WORK/world/train.jsonl", "retriever": "$URL",
  "steps": $STEPS, "prompts_per_step": 8, "seed": 1, "lr": 1e-4, "device": "$DEVICE",
  "rollout": {"samples_per_prompt": 4, "max_batch": 32, "max_seq_len": 1024,
              "env": {"max_turns": 3, "max_turn_tokens": 32, "max_obs_tokens": 100, "max_response_tokens": 300}},
  "loss": {"kl_coef": 0.001, "entropy_coef": 0.01},
  "update": {"mini_batch": 16, "micro_batch": 4, "skip_zero_advantage": false}
}
EOF

# run NAME NPROC THREADS [--set ...]: one grpo_train run; prints
# "steps_per_s tokens_per_s step_s all_reduce_s all_gather_s broadcast_s"
run() {
  local name=$1 n=$2 threads=$3 out="$WORK/$1"
  shift 3
  rm -rf "$out"
  if [[ $n -eq 1 ]]; then
    "$BIN/grpo_train" --config "$WORK/scale.json" --set "out_dir=$out" --set "threads=$threads" "$@" \
      --log-level info >"$out.log" 2>&1
  else
    OMP_NUM_THREADS=$threads "${TORCHRUN[@]}" --standalone --nproc-per-node "$n" --no-python \
      "$BIN/grpo_train" --config "$WORK/scale.json" --set "out_dir=$out" --set "threads=$threads" "$@" \
      --log-level info >"$out.log" 2>&1
  fi || { echo "$name failed: see $out.log" >&2; tail -20 "$out.log" >&2; exit 1; }
  "$PY" - "$out/metrics.jsonl" "$out.log" <<'EOF'
import json, re, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
timed = rows[1:] or rows
secs = sum(r["time/step_s"] for r in timed)
tok = sum(r["rollout/tokens_per_s"] * r["time/rollout_s"] for r in timed)
roll = sum(r["time/rollout_s"] for r in timed)
kinds = {"all-reduce": 0.0, "all-gather": 0.0, "broadcast": 0.0}
for line in open(sys.argv[2]):
    m = re.search(r"distributed: rank 0: \d+ collectives, [0-9.]+ s in them \(([^;]*);", line)
    if m:
        for part in m.group(1).split(", "):
            k, v, _ = part.rsplit(" ", 2)
            kinds[k] = float(v)
all_steps = sum(r["time/step_s"] for r in rows)
print(f"{len(timed) / secs:.4f} {tok / roll:.1f} {all_steps:.2f} {kinds['all-reduce']:.2f} "
      f"{kinds['all-gather']:.2f} {kinds['broadcast']:.2f}")
EOF
}

log "1 rank x $RANKS threads"
read -r S1 T1 W1 _ _ _ < <(run one 1 "$RANKS")
[[ -n "${S1:-}" ]] || exit 1
# One rank on one thread too: on shared cores, LibTorch's OpenMP regions with 2 threads can wait
# whole scheduler slices at their barriers (docs/BENCHMARKS.md), which N single-thread ranks never do.
log "1 rank x 1 thread"
read -r S11 T11 W11 _ _ _ < <(run one1 1 1)
[[ -n "${S11:-}" ]] || exit 1
log "$RANKS ranks x 1 thread (torchrun --no-python, Gloo)"
read -r SN TN WN RN GN BN < <(run many "$RANKS" 1)
[[ -n "${SN:-}" ]] || exit 1
SZ=0 RZ=0 GZ=0 BZ=0 WZ=0 TZ=0
if [[ "$ZERO" == 1 ]]; then
  log "$RANKS ranks x 1 thread, ZeRO-1"
  read -r SZ TZ WZ RZ GZ BZ < <(run zero "$RANKS" 1 --set update.zero_stage=1)
  [[ -n "${SZ:-}" ]] || exit 1
fi
"$PY" - "$WORK/one/metrics.jsonl" "$WORK/many/metrics.jsonl" <<'EOF'
import json, sys
a = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
b = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
same = len(a) == len(b) and all(x["reward/mean"] == y["reward/mean"] and x["tokens/policy"] == y["tokens/policy"]
                                for x, y in zip(a, b))
print(f"same rewards and trained tokens per step on 1 and N ranks: {'yes' if same else 'no (thread counts differ: float rounding can change a sampled token)'}")
EOF
if [[ "$ZERO" == 1 ]]; then
  grep -h "optimiser state: rank" "$WORK/many.log" "$WORK/zero.log" | sed 's/^.*optimiser state/optimiser state/' || true
fi
echo "| run | steps/s | rollout tokens/s | steps' time (s) | all-reduce (s) | all-gather (s) | broadcast (s) |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
echo "| 1 rank x $RANKS threads | $S1 | $T1 | $W1 | - | - | - |"
echo "| 1 rank x 1 thread | $S11 | $T11 | $W11 | - | - | - |"
echo "| $RANKS ranks x 1 thread | $SN | $TN | $WN | $RN | $GN | $BN |"
[[ "$ZERO" == 1 ]] && echo "| $RANKS ranks x 1 thread, ZeRO-1 | $SZ | $TZ | $WZ | $RZ | $GZ | $BZ |"
"$PY" -c "
s1, sn, t1, tn, wn, rn, gn, bn, sz, s11 = $S1, $SN, $T1, $TN, $WN, $RN, $GN, $BN, $SZ, $S11
print(f'scale: ranks=$RANKS steps_per_s_1={s1} steps_per_s_$RANKS={sn} steps_per_s_${RANKS}r_vs_1r={sn / s1:.2f} '
      f'tokens_per_s_1={t1} tokens_per_s_$RANKS={tn} comm_share={(rn + gn + bn) / wn:.3f} '
      f'update_comm_share={(rn + bn) / wn:.3f} zero1_steps_per_s={sz} steps_per_s_1x1={s11} '
      f'steps_per_s_${RANKS}r_vs_1x1={sn / s11:.2f}')
"
