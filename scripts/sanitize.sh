#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer run of the unit tests that need no LibTorch: gcc's
# -fsanitize=address,undefined over every target in build-asan/ (STRATA_WITH_TORCH=OFF), then
# CTest there. Any sanitizer report aborts its test, so the run fails on the first one. Run before
# each release (docs/RELIABILITY.md keeps the last result); about 10 minutes on 2 cores from cold.
#
#   scripts/sanitize.sh                 build and run every test of that build
#   scripts/sanitize.sh -R Gguf         ctest arguments pass through
#   STRATA_ASAN_BUILD_DIR=dir           build somewhere other than ./build-asan
#   STRATA_BUILD_LOCK=file              hold flock(1) on `file` while compiling (shared machines)
#   STRATA_JOBS=N                       parallel compile jobs (default: number of cores)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${STRATA_ASAN_BUILD_DIR:-$ROOT/build-asan}"
JOBS="${STRATA_JOBS:-$(nproc)}"
say() { printf '[sanitize] %s\n' "$*" >&2; }

FLAGS="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -O1 -g -D_GLIBCXX_ASSERTIONS"
LOCK=()
[[ -n "${STRATA_BUILD_LOCK:-}" ]] && LOCK=(flock "$STRATA_BUILD_LOCK")
start=$(date +%s)
mkdir -p "$BUILD_DIR"
cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=g++ \
  -DSTRATA_WITH_TORCH=OFF -DSTRATA_BUILD_TESTS=ON \
  -DCMAKE_CXX_FLAGS="$FLAGS" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" \
  >"$BUILD_DIR/configure.log" 2>&1 || { cat "$BUILD_DIR/configure.log" >&2; say "configure failed"; exit 1; }
"${LOCK[@]}" cmake --build "$BUILD_DIR" -j "$JOBS" >"$BUILD_DIR/build.log" 2>&1 ||
  { tail -50 "$BUILD_DIR/build.log" >&2; say "build failed (log: $BUILD_DIR/build.log)"; exit 1; }
say "built in $(($(date +%s) - start)) s"

# halt_on_error: the first report fails the test; detect_leaks: LeakSanitizer too.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1:strict_string_checks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export STRATA_NO_PROGRESS=1
run_start=$(date +%s)
rc=0
(cd "$BUILD_DIR" && ctest --output-on-failure -j "$(nproc)" --timeout 900 "$@") || rc=$?
say "tests ran in $(($(date +%s) - run_start)) s; total $(($(date +%s) - start)) s"
if ((rc != 0)); then
  say "FAILED: a test failed or a sanitizer reported (look for 'ERROR: AddressSanitizer' or 'runtime error' above)"
  exit 1
fi
say "no sanitizer report"
