#!/usr/bin/env bash
# Runs strata's tests: set-up (installs and builds, a no-op when done), then every CTest case.
#   scripts/test.sh                 all tests
#   scripts/test.sh -L unit         only fast unit tests (any ctest arguments pass through)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${STRATA_BUILD_DIR:-$ROOT/build}"
"$ROOT/scripts/setup.sh"
export STRATA_NO_PROGRESS=1
cd "$BUILD_DIR"
ctest --output-on-failure -j "$(nproc)" --timeout 600 "$@"
