#!/bin/sh
# run-fuzzer.sh FUZZER SEED_DIR [RUNS]: run a libFuzzer target for a
# bounded number of inputs ($FUZZ_RUNS, else RUNS, else 20000), starting
# from the committed seeds (copied, so the source tree is never written).
set -eu
fuzzer=$1
seeds=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
[ -d "$seeds" ] && cp -r "$seeds"/. "$work"/ 2>/dev/null || true
# libFuzzer's own failure code is 77, which meson counts as a skip.
exec "$fuzzer" -runs="${FUZZ_RUNS:-${3:-20000}}" -max_len=4096 -timeout=10 \
    -error_exitcode=1 -timeout_exitcode=1 -print_final_stats=1 "$work"
