#!/bin/bash
# bench/fuzz-soak.sh [--seconds S] [--targets "qcow2 virtio_blk ..."]
#                    [--build DIR] [--record]
#
# The long run of the fuzz targets that `make check` runs boundedly: each
# target for S seconds (default 600), from a copy of its seed corpus in
# tests/fuzz/corpus/<name>, one after the other, on one core each. Prints
# a line per target (executions, coverage, features, corpus size,
# findings); a finding's input is kept in DIR/soak/<name>/ and the script
# exits 1. --record also writes the table into docs/security.md, between
# its soak markers, with the date, the command, the machine and its load
# when the soak began: a soak of every target replaces what was recorded,
# one of some targets is added after it. Builds the fuzz targets (clang,
# ASan, UBSan) in DIR (default build-fuzz) first.
set -eu
seconds=600 targets="" build="" record=0
while [ $# -gt 0 ]; do
    case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --targets) targets="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    --record) record=1; shift ;;
    *) echo "fuzz-soak.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
case "$seconds" in ''|*[!0-9]*|0)
    echo "fuzz-soak.sh: --seconds '$seconds': want a whole number above 0" >&2
    exit 2 ;;
esac
top=$(cd "$(dirname "$0")/.." && pwd)
build=${build:-$top/build-fuzz}
if [ ! -f "$build/build.ninja" ]; then
    CC=clang meson setup "$build" "$top" -Dfuzz=true -Db_lundef=false \
        -Db_sanitize=address,undefined -Dc_args=-fsanitize=fuzzer-no-link
fi
ninja -C "$build" >/dev/null
all=$(sed -n "s/^  '\([a-z0-9_]*\)',$/\1/p" "$top/tests/fuzz/meson.build")
targets=${targets:-$all}
for t in $targets; do
    echo "$all" | grep -qx "$t" ||
        { echo "fuzz-soak.sh: no fuzz target '$t' (tests/fuzz/meson.build)" >&2; exit 2; }
done

load_at_start=$(cut -d ' ' -f 1-3 /proc/loadavg)
soak="$build/soak"
mkdir -p "$soak"
table="| target | seconds | executions | exec/s | coverage (edges) | features | corpus | findings |
|---|---|---|---|---|---|---|---|"
found=0
for t in $targets; do
    work="$soak/$t"
    rm -rf "$work"
    mkdir -p "$work/corpus" "$work/findings"
    cp -r "$top/tests/fuzz/corpus/$t/." "$work/corpus/" 2>/dev/null || true
    log="$work/log"
    echo "fuzz-soak: $t for $seconds s"
    set +e
    UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        "$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -max_len=4096 \
        -timeout=10 -print_final_stats=1 -artifact_prefix="$work/findings/" \
        "$work/corpus" > "$log" 2>&1
    rc=$?
    set -e
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
    cov=$(echo "$last" | sed -n 's/.* cov: \([0-9]*\).*/\1/p')
    ft=$(echo "$last" | sed -n 's/.* ft: \([0-9]*\).*/\1/p')
    corp=$(echo "$last" | sed -n 's/.* corp: \([0-9]*\).*/\1/p')
    findings=$(find "$work/findings" -type f | wc -l)
    if [ $rc -ne 0 ] || [ "$findings" -ne 0 ]; then
        found=1
        echo "fuzz-soak: $t FOUND something (exit $rc): $work/findings, $log"
        grep -m 3 -E 'ERROR|SUMMARY|abort' "$log" | sed 's/^/  /' || true
    fi
    line="| $t | $seconds | ${runs:-?} | ${speed:-?} | ${cov:-?} | ${ft:-?} | ${corp:-?} | $findings |"
    echo "$line"
    table="$table
$line"
done

if [ $record = 1 ]; then
    doc="$top/docs/security.md"
    header="Soak of $(date -u +%Y-%m-%d), \`bench/fuzz-soak.sh --seconds $seconds$([ "$targets" = "$all" ] || echo " --targets \"$targets\"")\`, on $(nproc) cores of $(uname -m) ($(clang --version | head -n 1)), one target at a time on one core; load average $load_at_start when it began:"
    [ "$targets" = "$all" ] && replace=1 || replace=0
    awk -v header="$header" -v table="$table" -v replace=$replace '
        /^<!-- soak-begin -->$/ { print; skip = replace; next }
        /^<!-- soak-end -->$/ { print ""; print header; print ""; print table;
                                print ""; skip = 0 }
        /^\(No soak recorded yet\.\)$/ { next }
        !skip' "$doc" | cat -s > "$doc.new"
    mv "$doc.new" "$doc"
    echo "fuzz-soak: recorded in docs/security.md"
fi
exit $found
