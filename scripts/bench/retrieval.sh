#!/usr/bin/env bash
# Retrieval benchmark: strata's BM25 index against bm25s, Xapian, PISA, tantivy and bm25-turbo,
# side by side, on the same corpora and queries (where each engine differs in k1/b, stop words or
# stemming: bench/retrieval_baselines.py):
#   - wiki18: ../shared/data/real/wiki18_sample_1000.jsonl with the 1,017 questions of the shared
#     NQ / HotpotQA / 2Wiki samples
#   - world:  a make_world corpus (BENCH_ENTITIES=870000 gives ~1,000,000 passages) with the
#     world's 1,000 test questions
# Per system: index build docs/s and size, single-thread top-10 QPS and p50/p99 latency (query
# analysis + search + fetching each hit's contents), overlap@10 with bm25s.
#
#   scripts/bench/retrieval.sh                         # full run (~15 min on 2 cores)
#   BENCH_ENTITIES=100000 scripts/bench/retrieval.sh   # quicker, ~115k passages
#
# Environment: STRATA_BUILD_DIR (default build/), BENCH_SKIP_BUILD=1 (use the binaries there as
# they are), BENCH_DIR (default /tmp/strata-bench-retrieval),
# BENCH_ENTITIES, BENCH_SYSTEMS (default bm25s,xapian,pisa,tantivy,bm25turbo). The last lines are
#   retrieval: qps_vs_bm25s=<x> qps_vs_xapian=<y> overlap10=<z> server_rps=<n> p99_ms=<m>
#   retrieval: qps_vs_pisa=<a> qps_vs_tantivy=<b> qps_vs_turbo=<c> p99_over_p50=<d>
# with the ratios (strata's single-thread QPS over each engine's) taken on the world corpus.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD_DIR="${STRATA_BUILD_DIR:-$ROOT/build}"
WORK="${BENCH_DIR:-/tmp/strata-bench-retrieval}"
ENTITIES="${BENCH_ENTITIES:-870000}"
SYSTEMS="${BENCH_SYSTEMS:-bm25s,xapian,pisa,tantivy,bm25turbo}"
SHARED_REAL="${STRATA_SHARED_DIR:-$ROOT/../shared}/data/real"
BIN="$BUILD_DIR/bin"
log() { echo "[bench] $*" >&2; }

# ---- bench-only dependencies (idempotent) -------------------------------------------------
# Xapian's Python bindings come from Debian (for /usr/bin/python3); bm25s, PyStemmer, PISA
# (pyterrier-pisa), tantivy and bm25-turbo are pinned from PyPI into a venv that also sees the
# system packages.
if ! /usr/bin/python3 -c "import xapian, numpy, scipy" 2>/dev/null; then
  log "installing python3-xapian, numpy, scipy (Debian)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-xapian python3-numpy \
    python3-scipy python3-venv >/dev/null
fi
VENV="$BUILD_DIR/bench-venv"
if ! "$VENV/bin/python" -c "import bm25s, Stemmer, xapian, pyterrier_pisa, tantivy, bm25_turbo_python" 2>/dev/null; then
  log "creating $VENV with bm25s, PyStemmer, pyterrier-pisa, tantivy and bm25-turbo"
  /usr/bin/python3 -m venv --system-site-packages "$VENV"
  "$VENV/bin/pip" install -q bm25s==0.3.16 PyStemmer==3.1.0 pyterrier-pisa==0.4.9 tantivy==0.27.0 \
    bm25-turbo==0.2.0
fi
PY="$VENV/bin/python"

# ---- build -------------------------------------------------------------------------------
# BENCH_SKIP_BUILD=1 takes build_index, bm25_bench and make_world as they are in $BUILD_DIR/bin.
if [[ "${BENCH_SKIP_BUILD:-0}" != 1 ]]; then
  if [ ! -f "$BUILD_DIR/build.ninja" ]; then
    cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSTRATA_WITH_TORCH=OFF
  fi
  cmake --build "$BUILD_DIR" --target build_index bm25_bench make_world
fi

# ---- one corpus: strata (two stemmers) and the baselines -----------------------------------
now() { date +%s.%N; }
run_dataset() {  # NAME CORPUS QUERIES
  local name="$1" corpus="$2" queries="$3" d="$WORK/$1"
  rm -rf "$d" && mkdir -p "$d/hits"
  cp "$queries" "$d/queries.txt"
  for variant in strata:porter strata_english:english; do
    local key="${variant%%:*}" stemmer="${variant##*:}"
    log "$name: build_index --stemmer $stemmer"
    local t0 t1
    t0=$(now)
    "$BIN/build_index" --corpus "$corpus" --out "$d/${key}_index" --stemmer "$stemmer" \
      --log-level warn >"$d/${key}_build.log" 2>&1
    t1=$(now)
    log "$name: bm25_bench ($key)"
    "$BIN/bm25_bench" --index "$d/${key}_index" --queries "$d/queries.txt" --k 10 --rounds 3 \
      --verify --hits-out "$d/hits/$key.txt" >"$d/$key.raw.json"
    "$PY" - "$d/$key.raw.json" "$t0" "$t1" >"$d/$key.json" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))
secs = float(sys.argv[3]) - float(sys.argv[2])
r["build_s"] = secs
r["docs_per_s"] = r["num_docs"] / secs
print(json.dumps(r))
PYEOF
  done
  log "$name: baselines ($SYSTEMS)"
  "$PY" "$ROOT/bench/retrieval_baselines.py" --corpus "$corpus" --queries "$d/queries.txt" \
    --work "$d/baseline_work" --out "$d/baselines.json" --hits-dir "$d/hits" \
    --systems "$SYSTEMS" --k 10 --k1 0.9 --b 0.4
  rm -rf "$d/baseline_work" "$d/strata_english_index"
}

mkdir -p "$WORK"
datasets=()
if [ -f "$SHARED_REAL/wiki18_sample_1000.jsonl" ]; then
  "$PY" - "$SHARED_REAL" "$WORK/wiki18_queries.txt" <<'PYEOF'
import json, sys
qs = []
for name in ("nq_test_17", "hotpotqa_500", "2wiki_500"):
    with open("%s/%s.jsonl" % (sys.argv[1], name), encoding="utf-8") as f:
        qs += [json.loads(l)["question"].replace("\n", " ") for l in f if l.strip()]
open(sys.argv[2], "w", encoding="utf-8").write("\n".join(qs) + "\n")
PYEOF
  run_dataset wiki18 "$SHARED_REAL/wiki18_sample_1000.jsonl" "$WORK/wiki18_queries.txt"
  datasets+=(wiki18)
else
  log "no $SHARED_REAL/wiki18_sample_1000.jsonl: skipping the Wikipedia sample"
fi

log "make_world --entities $ENTITIES"
"$BIN/make_world" --out "$WORK/world_data" --seed 1 --entities "$ENTITIES" --train 0 --dev 0 \
  --test 1000 --log-level warn
"$PY" -c "import json,sys; print('\n'.join(json.loads(l)['question'].replace('\n',' ') for l in open(sys.argv[1]) if l.strip()))" \
  "$WORK/world_data/test.jsonl" >"$WORK/world_queries.txt"
run_dataset world "$WORK/world_data/corpus.jsonl" "$WORK/world_queries.txt"
datasets+=(world)

# ---- server load -------------------------------------------------------------------------
# The daemon on the 1M index under 64 keep-alive clients (scripts/bench/retrieval_server.sh,
# wrk); the 1-query-per-request figures go on the last line. SERVER_RPS/SERVER_P99_MS from the
# environment skip this step.
if [[ -z "${SERVER_RPS:-}" ]]; then
  server_line=$("$ROOT/scripts/bench/retrieval_server.sh" --index "$WORK/world/strata_index" \
    --queries "$WORK/world_data/test.jsonl" --duration 10 | tee /dev/stderr | grep '^server:' || true)
  SERVER_RPS=$(sed -nE 's/.*rps_1q=([0-9.]+).*/\1/p' <<<"$server_line")
  SERVER_P99_MS=$(sed -nE 's/.*p99_ms_1q=([0-9.]+).*/\1/p' <<<"$server_line")
fi
SERVER_RPS="${SERVER_RPS:-na}"
SERVER_P99_MS="${SERVER_P99_MS:-na}"

# ---- report ------------------------------------------------------------------------------
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(date -u +%Y-%m-%d)"
"$PY" "$ROOT/bench/retrieval_report.py" --work "$WORK" --datasets "$(IFS=,; echo "${datasets[*]}")" \
  --server-rps "$SERVER_RPS" --server-p99 "$SERVER_P99_MS"
