#!/bin/bash
# bench/blk.sh [--runs N] [--seconds S] [--before REV] [--configs "vmdev qemu ..."]
#
# 4 KiB random reads at depth 32 on a disk with two request queues, from
# inside a guest (bench/guest/randread.c through bench/guest/randread.sh):
# vmdev-run against QEMU's virtio-blk-pci (num-queues=2, an iothread,
# aio=io_uring), same kernel, same initramfs, same image, in turns in the
# same run (bench/blk-job.sh has the setup). --before REV builds vmdev-run
# at REV too (a git worktree under .cache) and measures it as
# vmdev-before, for a change's before and after. Where /dev/kvm cannot run
# a guest (as on the project's CI machines) everything runs inside the
# nested QEMU (TCG, SVM) guest the guest tests use, so absolute numbers
# are nested-TCG numbers; compare the ratios. docs/benchmarks.md records
# runs.
set -eu
runs=3 seconds=10 configs="" before=""
while [ $# -gt 0 ]; do
    case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --before) before="$2"; shift 2 ;;
    --configs) configs="$2"; shift 2 ;;
    *) echo "blk.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
top=$(cd "$(dirname "$0")/.." && pwd)
cache="$top/.cache/guest"
mkdir -p "$cache"
command -v iperf3 > /dev/null || {
    # The bench initramfs is the network bench's, which carries iperf3.
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends iperf3 > /dev/null
}
make -C "$top" --no-print-directory deps build > /dev/null
"$top/scripts/fetch-kernel.sh" "$cache"
"$top/tests/guest/mkinitramfs.sh" "$cache/kernel" netbench "$cache/netbench-initramfs.cpio.gz"
job=("$top/bench/blk-job.sh" --vmm "$top/build/tools/vmm/vmdev-run"
     --kernel "$cache/kernel/vmlinuz" --initrd "$cache/netbench-initramfs.cpio.gz"
     --seconds "$seconds")
all_configs=${configs:-vmdev qemu}
if [ -n "$before" ]; then
    tree="$top/.cache/blkbench-before"
    rev=$(git -C "$top" rev-parse --verify "$before^{commit}")
    if [ "$(git -C "$tree" rev-parse HEAD 2>/dev/null)" != "$rev" ]; then
        git -C "$top" worktree remove --force "$tree" 2>/dev/null || rm -rf "$tree"
        git -C "$top" worktree add --detach "$tree" "$rev" > /dev/null
    fi
    [ -d "$tree/build" ] || meson setup "$tree/build" "$tree" > /dev/null
    ninja -C "$tree/build" tools/vmm/vmdev-run > /dev/null
    job+=(--vmm-before "$tree/build/tools/vmm/vmdev-run")
    [ -n "$configs" ] || all_configs="vmdev-before vmdev qemu"
    echo "blk.sh: vmdev-before is vmdev-run at $(git -C "$top" log --oneline -1 "$rev")"
fi
echo "blk.sh: vmdev is vmdev-run at $(git -C "$top" log --oneline -1 HEAD)$(git -C "$top" diff --quiet HEAD || echo ' (with changes)')"
gcc -O1 -o "$cache/kvm-usable" "$top/tests/guest/kvm-usable.c"
results="$cache/blkbench-results" logs="$cache/blkbench-logs"
: > "$results"
rm -rf "$logs"
mkdir -p "$logs"
# Where nested, each guest in a fresh nested guest of its own, so that the
# nested layer's faults cost one measurement, not the round.
for ((r = 1; r <= runs; r++)); do
    for c in $all_configs; do
        rm -rf "$cache/blkbench-work" "$cache/blkbench/work"
        if "$cache/kvm-usable" > /dev/null; then
            work="$cache/blkbench-work"
            "${job[@]}" --configs "$c" --work "$work" > "$logs/$r-$c.job" 2>&1 || true
        else
            work="$cache/blkbench/work" # the nested guest's share
            VMDEV_NESTED_TIMEOUT=$((seconds + 300)) \
                "$top/tests/guest/nested.sh" --name blkbench --cache "$cache" -- \
                "${job[@]}" --configs "$c" --work "$work" > "$logs/$r-$c.job" 2>&1 || true
        fi
        cp "$work/$c.log" "$logs/$r-$c.log" 2>/dev/null || true
        if grep -q "^$c " "$work/results" 2>/dev/null; then
            echo "round $r: $(cat "$work/results")"
            sed "s/^/$r /" "$work/results" >> "$results"
        else
            echo "round $r: $c measured nothing (see $logs/$r-$c.*)"
        fi
    done
done

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
echo "round CONFIG iops:"
cat "$results"
echo "median over $runs rounds (of those that measured): CONFIG iops rounds"
for c in $all_configs; do
    iops=$(awk -v n="$c" '$2 == n { print $3 }' "$results" | median)
    echo "MEDIAN $c ${iops:-none} $(awk -v n="$c" '$2 == n' "$results" | wc -l)"
done
