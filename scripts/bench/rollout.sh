#!/usr/bin/env bash
# Rollout phase wall time, async engine vs a Search-R1-style synchronous baseline, with 0 ms and
# with added retrieval latency: the tiny policy (warm-started on the built-in world), a real
# BM25 daemon (in-process, loopback), 32 prompts x 5 samples, up to 4 turns.
#   scripts/bench/rollout.sh [--delay-ms 50] [--prompts 32] [--samples 5] [--threads 1]
# Last line: rollout: latency_hiding=<t50/t0> async_vs_sync=<sync_t50/async_t50> tokens_per_s=<n>
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="${STRATA_BUILD_DIR:-$ROOT/build}/bin"
[[ -x "$BIN/rollout_bench" ]] || "$ROOT/scripts/setup.sh"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(date -u +%F)"
exec "$BIN/rollout_bench" --log-level warn "$@"
