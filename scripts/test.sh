#!/usr/bin/env bash
# Runs strata's tests: set-up (installs and builds, a no-op when done), every CTest case, then
# the fuzzers (scripts/fuzz.sh, STRATA_FUZZ_SECONDS per target, default 20; 0 skips them).
#   scripts/test.sh                 all tests, then the fuzz stage
#   scripts/test.sh -L unit         only fast unit tests (any ctest arguments pass through; a
#                                   filtered run skips the fuzz stage)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${STRATA_BUILD_DIR:-$ROOT/build}"
"$ROOT/scripts/setup.sh"
export STRATA_NO_PROGRESS=1
cd "$BUILD_DIR"
ctest --output-on-failure -j "$(nproc)" --timeout 600 "$@"

FUZZ_SECONDS="${STRATA_FUZZ_SECONDS:-20}"
if (($# == 0)) && [[ "$FUZZ_SECONDS" != 0 ]]; then
  fuzz_start=$(date +%s)
  "$ROOT/scripts/fuzz.sh" "$FUZZ_SECONDS"
  echo "[test] fuzz stage: $(($(date +%s) - fuzz_start)) s (build and ${FUZZ_SECONDS} s per target)"
fi
