#!/usr/bin/env bash
# Times make_world on a ~1,000,000-passage world (issue target: under 60 s) and checks that two
# runs with the same seed give byte-identical files.
#   scripts/bench/world.sh [ENTITIES]     default 870000 entities = ~1.0M passages
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="${STRATA_BUILD_DIR:-$ROOT/build}/bin"
ENTITIES="${1:-870000}"
OUT="$(mktemp -d /tmp/strata-world-bench.XXXXXX)"
trap 'rm -rf "$OUT"' EXIT
export STRATA_NO_PROGRESS=1
t0=$(date +%s.%N)
"$BIN/make_world" --out "$OUT/a" --seed 1 --entities "$ENTITIES" --log-level warn
t1=$(date +%s.%N)
"$BIN/make_world" --out "$OUT/b" --seed 1 --entities "$ENTITIES" --log-level warn
passages=$(wc -l < "$OUT/a/corpus.jsonl")
bytes=$(stat -c %s "$OUT/a/corpus.jsonl")
same=yes
for f in corpus.jsonl train.jsonl dev.jsonl test.jsonl world.json; do
  cmp -s "$OUT/a/$f" "$OUT/b/$f" || same=no
done
awk -v e="$ENTITIES" -v p="$passages" -v b="$bytes" -v t0="$t0" -v t1="$t1" -v same="$same" 'BEGIN {
  s = t1 - t0
  printf "world: entities=%s passages=%d corpus_mb=%.0f seconds=%.2f passages_per_s=%.0f identical=%s\n", e, p, b / 1e6, s, p / s, same
}'
