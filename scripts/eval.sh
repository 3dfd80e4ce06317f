#!/usr/bin/env bash
# Evaluate a search agent on every QA set of some folders or files, and print one table.
#
#   scripts/eval.sh ../shared/data/real --model runs/grpo/final --retriever http://127.0.0.1:8000/retrieve
#   scripts/eval.sh data/hotpotqa_dev.jsonl data/nq_test.jsonl --endpoint http://127.0.0.1:8001 \
#       --endpoint-model Qwen/Qwen2.5-3B-Instruct --retriever http://127.0.0.1:8000/retrieve --limit 200
#
# Positional arguments (before the first --flag) are QA files or folders; a folder contributes
# its *.jsonl and *.json files that hold questions (corpus files and others without a "question"
# field are skipped, and said so). Everything from the first --flag on goes to build/bin/evaluate
# (see `build/bin/evaluate --help`); without --out the results go to runs/eval/<date-time>.
#   STRATA_BUILD_DIR=dir   use dir/bin/evaluate instead of build/bin/evaluate
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
EVALUATE="${STRATA_BUILD_DIR:-$ROOT/build}/bin/evaluate"

usage() {
  sed -n '2,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
[[ $# -gt 0 ]] || usage
[[ "$1" == "-h" || "$1" == "--help" ]] && usage
if [[ ! -x "$EVALUATE" ]]; then
  echo "eval.sh: $EVALUATE not found; build it with scripts/setup.sh" >&2
  exit 1
fi

# A QA file has a "question" key near its start (JSONL line or HotpotQA JSON list).
# (Read whole first, so that an early grep exit cannot SIGPIPE head under pipefail.)
is_qa_file() {
  local start
  start="$(head -c 65536 "$1" | tr -d '\0')"
  grep -q '"question"[[:space:]]*:' <<<"$start"
}

data=()
while [[ $# -gt 0 && "$1" != --* ]]; do
  path="$1"
  shift
  if [[ -d "$path" ]]; then
    found=0
    while IFS= read -r f; do
      if is_qa_file "$f"; then
        data+=(--data "$f")
        found=1
      else
        echo "eval.sh: skipping $f (no \"question\" field: a corpus or another kind of file)" >&2
      fi
    done < <(find "$path" -maxdepth 1 -type f \( -name '*.jsonl' -o -name '*.json' \) | LC_ALL=C sort)
    [[ $found == 1 ]] || { echo "eval.sh: no QA file in $path" >&2; exit 2; }
  elif [[ -f "$path" ]]; then
    data+=(--data "$path")
  else
    echo "eval.sh: $path: no such file or folder" >&2
    exit 2
  fi
done
[[ ${#data[@]} -gt 0 ]] || { echo "eval.sh: give QA files or folders before the flags" >&2; exit 2; }

out=()
has_out=0
for a in "$@"; do [[ "$a" == --out || "$a" == --out=* ]] && has_out=1; done
[[ $has_out == 1 ]] || out=(--out "$ROOT/runs/eval/$(date +%Y%m%d-%H%M%S)")

exec "$EVALUATE" "${data[@]}" "${out[@]}" "$@"
