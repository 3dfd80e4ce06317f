#!/usr/bin/env bash
# Builds strata's libFuzzer targets (tests/fuzz; clang, ASan+UBSan, no LibTorch) in build-fuzz/
# and runs each for SECONDS on a copy of its seed corpus (tests/fuzz/corpus/<target>/). Prints one
# line per target and exits 1 on any finding (a crash, a sanitizer report, a timeout, an
# out-of-memory), naming the file that reproduces it:  build-fuzz/bin/<target> <that file>.
#
#   scripts/fuzz.sh                 30 s per target
#   scripts/fuzz.sh 600             a longer run (10 min per target)
#   scripts/fuzz.sh 60 fuzz_gguf    some targets only
#   STRATA_FUZZ_BUILD_DIR=dir       build somewhere other than ./build-fuzz
#   STRATA_BUILD_LOCK=file          hold flock(1) on `file` while compiling (shared machines)
#   STRATA_JOBS=N                   parallel compile jobs (default: number of cores)
#   STRATA_FUZZ_NO_BUILD=1          run the fuzzers already in the build folder as they are
# New inputs the fuzzer finds stay in a temporary copy; the seed corpus in the repository changes
# only by hand (or with fuzz_make_seeds).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SECONDS_PER_TARGET="${1:-30}"
shift || true
BUILD_DIR="${STRATA_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}"
JOBS="${STRATA_JOBS:-$(nproc)}"
ALL_TARGETS=(fuzz_retrieve_request fuzz_http_front fuzz_gguf fuzz_safetensors fuzz_tokenizer_json
             fuzz_bm25_manifest)
TARGETS=("${@:-${ALL_TARGETS[@]}}")
say() { printf '[fuzz] %s\n' "$*" >&2; }

[[ "$SECONDS_PER_TARGET" =~ ^[0-9]+$ && "$SECONDS_PER_TARGET" -gt 0 ]] ||
  { say "SECONDS must be a positive integer, got '$SECONDS_PER_TARGET'"; exit 2; }
# libFuzzer comes with clang: Debian's clang and libclang-rt-14-dev (scripts/setup.sh installs both).
if ! command -v clang++ >/dev/null; then
  say "clang++ is missing: the fuzzers need clang and libFuzzer (apt-get install clang libclang-rt-14-dev)"
  exit 1
fi
FUZZER_LIB="$(clang++ -print-resource-dir)/lib/linux/libclang_rt.fuzzer-x86_64.a"
if [[ ! -f "$FUZZER_LIB" ]]; then
  say "libFuzzer's runtime ($FUZZER_LIB) is missing: apt-get install libclang-rt-14-dev"
  exit 1
fi

# ---- build -------------------------------------------------------------------------------
if [[ -z "${STRATA_FUZZ_NO_BUILD:-}" ]]; then
  LOCK=()
  [[ -n "${STRATA_BUILD_LOCK:-}" ]] && LOCK=(flock "$STRATA_BUILD_LOCK")
  mkdir -p "$BUILD_DIR"
  cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DSTRATA_WITH_TORCH=OFF -DSTRATA_BUILD_TESTS=OFF -DSTRATA_FUZZ=ON >"$BUILD_DIR/configure.log" 2>&1 ||
    { cat "$BUILD_DIR/configure.log" >&2; say "configure failed"; exit 1; }
  build_start=$(date +%s)
  "${LOCK[@]}" cmake --build "$BUILD_DIR" --target fuzzers -j "$JOBS" >"$BUILD_DIR/build.log" 2>&1 ||
    { tail -50 "$BUILD_DIR/build.log" >&2; say "build failed (log: $BUILD_DIR/build.log)"; exit 1; }
  say "built in $(($(date +%s) - build_start)) s"
fi
say "${#TARGETS[@]} targets x ${SECONDS_PER_TARGET} s"

# ---- run ---------------------------------------------------------------------------------
ARTIFACTS="$BUILD_DIR/fuzz-findings"
mkdir -p "$ARTIFACTS"
export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_stack_use_after_return=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
failed=0
total_runs=0
printf '%-24s %12s %10s %8s  %s\n' target runs exec/s corpus result
for t in "${TARGETS[@]}"; do
  seeds="$ROOT/tests/fuzz/corpus/$t"
  [[ -x "$BUILD_DIR/bin/$t" && -d "$seeds" ]] || { say "no such target or seed corpus: $t"; failed=1; continue; }
  work="$(mktemp -d "${TMPDIR:-/tmp}/strata-fuzz-$t.XXXXXX")"
  cp -r "$seeds" "$work/corpus"
  rc=0
  (cd "$work" && "$BUILD_DIR/bin/$t" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
     -print_final_stats=1 -artifact_prefix="$ARTIFACTS/$t-" "$work/corpus" >"$work/log" 2>&1) || rc=$?
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$work/log" | tail -1)"
  units="$(find "$work/corpus" -type f | wc -l)"
  total_runs=$((total_runs + ${runs:-0}))
  if ((rc == 0)); then
    printf '%-24s %12s %10s %8s  %s\n' "$t" "${runs:-?}" "${rate:-?}" "$units" ok
    rm -rf "$work"
  else
    crash="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$work/log" | tail -1)"
    printf '%-24s %12s %10s %8s  %s\n' "$t" "${runs:-?}" "${rate:-?}" "$units" "FAILED (exit $rc)"
    grep -E 'ERROR: |runtime error|SUMMARY|fuzz invariant|terminate called|what\(\)' "$work/log" | head -8 >&2 || true
    say "$t: finding in ${crash:-"(no test unit; log: $work/log)"}; log: $work/log"
    say "reproduce: $BUILD_DIR/bin/$t ${crash:-}"
    failed=1
  fi
done
say "$total_runs executions in total"
if ((failed)); then
  say "FAILED: see the findings above"
  exit 1
fi
