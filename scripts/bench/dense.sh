#!/usr/bin/env bash
# strata's dense retrieval daemon against Search-R1's recipe in Python (bench/dense_baseline.py:
# FastAPI + uvicorn + transformers + faiss-cpu), same model (all-MiniLM-L6-v2), same index (the
# baseline's IndexFlatIP, adopted by strata), same corpus and queries (the built-in world), same
# threads; side by side in one run:
#   - index build: passages/s of encoding the corpus (strata: build_index --dense)
#   - requests/s and p99 of POST /retrieve at 1 and 8 queries per request, 16 concurrent
#     keep-alive clients (wrk)
#   - resident memory (VmHWM) of each server after the load
#   - recall@3 of the supporting passages of the world's test questions for BM25, dense and
#     hybrid (scripts/bench/recall.py through strata's daemons)
#
#   scripts/bench/dense.sh [--threads N] [--duration S] [--model DIR] [--entities N] [--bf16]
#
# --bf16 runs strata's encoder (build and daemon) in bf16 (CPUs with AVX512-BF16, or CUDA); the
# Python server stays in float32, as Search-R1's server runs on a CPU (it casts to fp16 only on
# a GPU). Without it both sides run float32.
#
# Prints the tables and the closing line
#   dense: qps_vs_python=… build_vs_python=… rss_vs_python=… recall3_world_dense=… recall3_world_hybrid=…
# (qps ratio at 1 query per request; rss ratio is strata / Python, lower is better).
# Installs fastapi/uvicorn (pinned) and wrk when missing. Run under flock /tmp/strata-bench.lock
# on a shared machine.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="${STRATA_BUILD_DIR:-$ROOT/build}/bin"
PYTHON="${STRATA_PYTHON:-python3}"
THREADS="$(nproc)"
DURATION=10
MODEL="${STRATA_MINILM:-$HOME/.cache/strata/models/all-minilm-l6-v2}"
ENTITIES=""
ST_PREC=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --threads) THREADS="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --model) MODEL="$2"; shift 2 ;;
    --entities) ENTITIES="$2"; shift 2 ;;
    --bf16) ST_PREC=(--bf16); shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "dense.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ -f "$MODEL/config.json" ]] || { echo "dense.sh: no model at $MODEL (scripts/setup.sh unpacks all-MiniLM-L6-v2)" >&2; exit 2; }
for t in make_world build_index retrieval_server; do
  [[ -x "$BIN/$t" ]] || { echo "dense.sh: build $t first" >&2; exit 2; }
done
# The baseline's own dependencies, pinned (torch, transformers and faiss-cpu come from setup.sh).
"$PYTHON" -c "import fastapi, uvicorn" 2>/dev/null ||
  "$PYTHON" -m pip install -q "fastapi==0.163.2" "uvicorn==0.54.0" >&2
command -v wrk >/dev/null || apt-get install -y -qq wrk >/dev/null

WORK="$(mktemp -d /tmp/strata_bench_dense.XXXXXX)"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
export OMP_NUM_THREADS="$THREADS" STRATA_NO_PROGRESS=1 TOKENIZERS_PARALLELISM=false

"$BIN/make_world" --out "$WORK/world" --seed 1 ${ENTITIES:+--entities "$ENTITIES"} --log-level warn
CORPUS="$WORK/world/corpus.jsonl"
PASSAGES="$(wc -l < "$CORPUS")"
echo "corpus: $PASSAGES passages; threads: $THREADS; model: $MODEL; strata encoder: ${ST_PREC[*]:-fp32}, Python: fp32" >&2

# ---- build ---------------------------------------------------------------------------------
"$PYTHON" "$ROOT/bench/dense_baseline.py" build --model "$MODEL" --corpus "$CORPUS" \
  --out "$WORK/py.faiss" --threads "$THREADS" --batch 64 | tee "$WORK/py_build.txt" >&2
PY_BUILD="$(sed -E 's/.*passages_per_s=([0-9.]+).*/\1/' "$WORK/py_build.txt")"
"$BIN/build_index" --dense --encoder "$MODEL" "${ST_PREC[@]}" --encoder-batch 64 --corpus "$CORPUS" \
  --out "$WORK/dense" --log-level warn | tee "$WORK/st_build.txt" >&2
ST_BUILD="$(sed -E 's/.*; ([0-9.]+) passages\/s.*/\1/' "$WORK/st_build.txt")"
"$BIN/build_index" --adopt-faiss "$WORK/py.faiss" --corpus "$CORPUS" --out "$WORK/adopted" \
  --encoder-name all-minilm-l6-v2 --log-level warn >/dev/null
"$BIN/build_index" --corpus "$CORPUS" --out "$WORK/bm25" --log-level warn >/dev/null

# ---- servers ---------------------------------------------------------------------------------
wait_port() {  # $1 = port; waits for /health
  for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$1/health" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "dense.sh: no server on port $1" >&2; return 1
}
start_strata() {  # $1 = port, rest = index arguments
  local port="$1"; shift
  "$BIN/retrieval_server" "$@" --encoder "$MODEL" "${ST_PREC[@]}" --port "$port" --threads 2 --log-level warn &
  PIDS+=($!)
  wait_port "$port"
}
rss_mb() { awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }

"$PYTHON" - "$WORK/world/test.jsonl" "$WORK" <<'PY'
import json, sys
qs = [json.loads(l)["question"] for l in open(sys.argv[1]) if l.strip()]
with open(sys.argv[2] + "/bodies_1q.txt", "w") as f:
    for q in qs:
        f.write(json.dumps({"queries": [q], "topk": 3, "return_scores": True}) + "\n")
with open(sys.argv[2] + "/bodies_8q.txt", "w") as f:
    for i in range(len(qs)):
        f.write(json.dumps({"queries": [qs[(i + j) % len(qs)] for j in range(8)], "topk": 3,
                            "return_scores": True}) + "\n")
PY
run_wrk() {  # $1 = port, $2 = bodies; prints "rps p99_ms"
  STRATA_BENCH_BODIES="$2" wrk -t2 -c16 -d"${DURATION}s" --timeout 30s \
    -s "$ROOT/scripts/bench/retrieval_server.lua" "http://127.0.0.1:$1" > "$WORK/wrk.out"
  local line; line="$(grep '^RESULT' "$WORK/wrk.out")"
  [[ "$line" == *"errors=0 non2xx=0"* ]] || echo "dense.sh: wrk saw errors on port $1: $line" >&2
  echo "$(sed -E 's/.*rps=([0-9.]+).*/\1/' <<<"$line") $(sed -E 's/.*p99_ms=([0-9.]+).*/\1/' <<<"$line")"
}
measure() {  # $1 = name, $2 = port, $3 = pid
  STRATA_BENCH_BODIES="$WORK/bodies_1q.txt" wrk -t1 -c4 -d2s \
    -s "$ROOT/scripts/bench/retrieval_server.lua" "http://127.0.0.1:$2" >/dev/null
  read -r R1 P1 < <(run_wrk "$2" "$WORK/bodies_1q.txt")
  read -r R8 P8 < <(run_wrk "$2" "$WORK/bodies_8q.txt")
  echo "$1 $R1 $P1 $R8 $P8 $(rss_mb "$3")"
}

# Python first, alone on the machine, then stopped; then strata, alone.
"$PYTHON" "$ROOT/bench/dense_baseline.py" serve --model "$MODEL" --corpus "$CORPUS" \
  --index "$WORK/py.faiss" --port 18411 --threads "$THREADS" &
PIDS+=($!)
wait_port 18411
read -r _ PR1 PP1 PR8 PP8 PRSS < <(measure python 18411 "${PIDS[-1]}")
kill -TERM "${PIDS[-1]}"; wait "${PIDS[-1]}" 2>/dev/null || true; unset 'PIDS[-1]'
start_strata 18412 --index "$WORK/adopted"
read -r _ SR1 SP1 SR8 SP8 SRSS < <(measure strata 18412 "${PIDS[-1]}")

# ---- recall@3 on the world's test questions --------------------------------------------------
start_strata 18413 --hybrid "$WORK/bm25,$WORK/dense"
"$BIN/retrieval_server" --index "$WORK/bm25" --port 18414 --threads 2 --log-level warn &
PIDS+=($!)
wait_port 18414
"$PYTHON" "$ROOT/scripts/bench/recall.py" --qa "$WORK/world/test.jsonl" --k 3 \
  --daemon bm25=http://127.0.0.1:18414/retrieve --daemon dense=http://127.0.0.1:18412/retrieve \
  --daemon hybrid=http://127.0.0.1:18413/retrieve | tee "$WORK/recall.txt"
RD="$("$PYTHON" -c "import json,sys; print(json.loads(open(sys.argv[1]).read().split('recall: ')[1])['dense']['all'])" "$WORK/recall.txt")"
RH="$("$PYTHON" -c "import json,sys; print(json.loads(open(sys.argv[1]).read().split('recall: ')[1])['hybrid']['all'])" "$WORK/recall.txt")"

echo
echo "| server | build passages/s | rps 1q | p99 ms 1q | rps 8q | p99 ms 8q | RSS MB |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
echo "| Python (FastAPI + transformers + faiss) | $PY_BUILD | $PR1 | $PP1 | $PR8 | $PP8 | $PRSS |"
echo "| strata retrieval_server (${ST_PREC[*]:-fp32}) | $ST_BUILD | $SR1 | $SP1 | $SR8 | $SP8 | $SRSS |"
awk -v sr1="$SR1" -v pr1="$PR1" -v sr8="$SR8" -v pr8="$PR8" -v sb="$ST_BUILD" -v pb="$PY_BUILD" \
    -v sm="$SRSS" -v pm="$PRSS" -v rd="$RD" -v rh="$RH" 'BEGIN {
  printf "qps_8q_vs_python=%.2f\n", sr8 / pr8
  printf "dense: qps_vs_python=%.2f build_vs_python=%.2f rss_vs_python=%.2f recall3_world_dense=%.3f recall3_world_hybrid=%.3f\n",
         sr1 / pr1, sb / pb, sm / pm, rd, rh
}'
