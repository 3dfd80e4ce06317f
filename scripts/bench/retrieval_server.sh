#!/usr/bin/env bash
# Retrieval daemon under load: requests per second and p99 latency of POST /retrieve with 64
# concurrent keep-alive connections (wrk), 1 and 8 queries per request, on loopback.
#
#   scripts/bench/retrieval_server.sh [--index DIR] [--queries FILE.jsonl] [--duration SECONDS]
#                                     [--connections N]
#
# Without --index, a BM25 index of ../shared/data/real/wiki18_sample_1000.jsonl is built into a
# temporary directory. Queries are the "question" fields of --queries (default: the HotpotQA
# sample in ../shared/data/real), cycled so that consecutive requests differ. The server gets
# --threads/--search-threads from STRATA_BENCH_IO_THREADS / STRATA_BENCH_SEARCH_THREADS (default:
# all cores). Prints one line:
#   server: rps_1q=<n> p99_ms_1q=<m> rps_8q=<n> p99_ms_8q=<m>
# The server and wrk share the machine, so the numbers are a lower bound on a dedicated host.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD_DIR="${STRATA_BUILD_DIR:-$ROOT/build}"
SHARED="${STRATA_SHARED_DIR:-$ROOT/../shared}"
INDEX=""
QUERIES=""
DURATION=10
CONNECTIONS=64
while [[ $# -gt 0 ]]; do
  case "$1" in
    --index) INDEX="$2"; shift 2 ;;
    --queries) QUERIES="$2"; shift 2 ;;
    --duration) DURATION="$2"; shift 2 ;;
    --connections) CONNECTIONS="$2"; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "retrieval_server.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

if ! command -v wrk >/dev/null 2>&1; then
  echo "installing wrk (Debian package)" >&2
  if [[ $(id -u) -eq 0 ]]; then apt-get install -y wrk >/dev/null; else sudo apt-get install -y wrk >/dev/null; fi
fi

SERVER="$BUILD_DIR/bin/retrieval_server"
if [[ ! -x "$SERVER" || ( -z "$INDEX" && ! -x "$BUILD_DIR/bin/build_index" ) ]]; then
  cmake --build "$BUILD_DIR" --target retrieval_server build_index -j2
fi

WORK="$(mktemp -d /tmp/strata_bench_server.XXXXXX)"
SERVER_PID=""
cleanup() {
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

if [[ -z "$INDEX" ]]; then
  INDEX="$WORK/index"
  STRATA_NO_PROGRESS=1 "$BUILD_DIR/bin/build_index" --corpus "$SHARED/data/real/wiki18_sample_1000.jsonl" \
    --out "$INDEX" --log-level warn >/dev/null
fi

# Request bodies: 1 and 8 questions each, Search-R1's shape with scores.
python3 - "${QUERIES:-$SHARED/data/real/hotpotqa_500.jsonl}" "$WORK" <<'PY'
import json, sys
qs = [json.loads(l)["question"].replace("\n", " ") for l in open(sys.argv[1], encoding="utf-8")
      if l.strip()]
with open(sys.argv[2] + "/bodies_1q.txt", "w") as f:
    for q in qs:
        f.write(json.dumps({"queries": [q], "topk": 3, "return_scores": True}) + "\n")
with open(sys.argv[2] + "/bodies_8q.txt", "w") as f:
    for i in range(len(qs)):
        batch = [qs[(i + j) % len(qs)] for j in range(8)]
        f.write(json.dumps({"queries": batch, "topk": 3, "return_scores": True}) + "\n")
PY

CORES="$(nproc)"
"$SERVER" --index "$INDEX" --port 0 --port-file "$WORK/port" \
  --threads "${STRATA_BENCH_IO_THREADS:-$CORES}" --search-threads "${STRATA_BENCH_SEARCH_THREADS:-$CORES}" \
  --log-level warn &
SERVER_PID=$!
for _ in $(seq 1 200); do [[ -s "$WORK/port" ]] && break; sleep 0.05; done
[[ -s "$WORK/port" ]] || { echo "retrieval_server did not start" >&2; exit 1; }
PORT="$(cat "$WORK/port")"
URL="http://127.0.0.1:$PORT"

run_wrk() {  # $1 = bodies file; prints "rps p99_ms"
  STRATA_BENCH_BODIES="$1" wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --timeout 10s \
    -s "$ROOT/scripts/bench/retrieval_server.lua" "$URL" > "$WORK/wrk.out"
  grep '^RESULT' "$WORK/wrk.out" >&2
  local line
  line="$(grep '^RESULT' "$WORK/wrk.out")"
  if [[ "$line" != *"errors=0 non2xx=0"* ]]; then
    echo "retrieval_server.sh: wrk saw errors: $line" >&2
  fi
  local rps p99
  rps="$(sed -E 's/.*rps=([0-9.]+).*/\1/' <<<"$line")"
  p99="$(sed -E 's/.*p99_ms=([0-9.]+).*/\1/' <<<"$line")"
  echo "$rps $p99"
}

# A short warm-up so that the page cache and connections are in place.
STRATA_BENCH_BODIES="$WORK/bodies_1q.txt" wrk -t1 -c4 -d1s -s "$ROOT/scripts/bench/retrieval_server.lua" "$URL" >/dev/null
read -r RPS1 P991 < <(run_wrk "$WORK/bodies_1q.txt")
read -r RPS8 P998 < <(run_wrk "$WORK/bodies_8q.txt")

kill -TERM "$SERVER_PID"
wait "$SERVER_PID"
SERVER_PID=""
printf 'server: rps_1q=%.0f p99_ms_1q=%.2f rps_8q=%.0f p99_ms_8q=%.2f\n' "$RPS1" "$P991" "$RPS8" "$P998"
