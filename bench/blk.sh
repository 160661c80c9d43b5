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
# The guest is the network bench's (mkinitramfs.sh's netbench role).
. "$top/bench/guest-rounds.sh"
guest_bench_prepare
job=("$top/bench/blk-job.sh" "${guest_job[@]}" --seconds "$seconds")
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
guest_bench_rounds blkbench "$runs" "$all_configs" $((seconds + 300)) "${job[@]}"

echo "round CONFIG iops:"
cat "$results"
echo "median over $runs rounds (of those that measured): CONFIG iops rounds"
for c in $all_configs; do
    iops=$(awk -v n="$c" '$2 == n { print $3 }' "$results" | median)
    echo "MEDIAN $c ${iops:-none} $(awk -v n="$c" '$2 == n' "$results" | wc -l)"
done
