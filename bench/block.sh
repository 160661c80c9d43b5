#!/bin/bash
# bench/block.sh [--runs N] [--size MIB] [--dir DIR]
#
# The block backend driven as a device drives it (build/bench/vmdev-blkbench:
# requests with iovecs kept in flight on one engine) against `qemu-img bench
# -i io_uring -t none`, with the same access pattern on the same files, in
# turns in the same run: 4 KiB strided reads and writes (a stride of 257
# blocks, which visits the disk in an order no read-ahead follows) at depth 1
# and 32, and 64 KiB sequential at depth 8; on raw, on a fully allocated qcow2
# (64 KiB clusters), and writes to a fresh qcow2 (every write allocates).
# Runs on the host: no VM is involved. Prints a Markdown table of medians;
# docs/benchmarks.md records a run.
set -eu
runs=3
size_mib=1024
dir=
while [ $# -gt 0 ]; do
    case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --size) size_mib="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "block.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
case "$runs$size_mib" in
*[!0-9]*|'') echo "block.sh: --runs and --size take numbers" >&2; exit 2 ;;
esac
top=$(cd "$(dirname "$0")/.." && pwd)
make -C "$top" --no-print-directory build >/dev/null
ours="$top/build/bench/vmdev-blkbench"
# O_DIRECT needs a real file system (not tmpfs): default under the tree.
dir=${dir:-$top/.cache/bench-block}
mkdir -p "$dir"
trap 'rm -f "$dir"/*.raw "$dir"/*.qcow2' EXIT

echo "preparing ${size_mib} MiB images in $dir" >&2
head -c "$((size_mib << 20))" /dev/urandom > "$dir/disk.raw"
qemu-img convert -f raw -O qcow2 "$dir/disk.raw" "$dir/disk.qcow2"
stride=$((257 * 4096))
# Read both once, so the first measured run does not pay for cold storage.
for f in disk.raw disk.qcow2; do
    dd if="$dir/$f" of=/dev/null bs=1M iflag=direct status=none
done

# name|format|file|args; "fresh" files are recreated before every run.
workloads=(
  "4 KiB read, depth 1|raw|disk.raw|-c 20000 -d 1 -s 4096 -S $stride"
  "4 KiB read, depth 32|raw|disk.raw|-c 200000 -d 32 -s 4096 -S $stride"
  "4 KiB write, depth 1|raw|disk.raw|-w -c 20000 -d 1 -s 4096 -S $stride"
  "4 KiB write, depth 32|raw|disk.raw|-w -c 200000 -d 32 -s 4096 -S $stride"
  "64 KiB sequential read, depth 8|raw|disk.raw|-c 16000 -d 8 -s 65536"
  "64 KiB sequential write, depth 8|raw|disk.raw|-w -c 16000 -d 8 -s 65536"
  "4 KiB read, depth 1|qcow2|disk.qcow2|-c 20000 -d 1 -s 4096 -S $stride"
  "4 KiB read, depth 32|qcow2|disk.qcow2|-c 200000 -d 32 -s 4096 -S $stride"
  "4 KiB write, depth 1|qcow2|disk.qcow2|-w -c 20000 -d 1 -s 4096 -S $stride"
  "4 KiB write, depth 32|qcow2|disk.qcow2|-w -c 200000 -d 32 -s 4096 -S $stride"
  "64 KiB sequential read, depth 8|qcow2|disk.qcow2|-c 16000 -d 8 -s 65536"
  "64 KiB sequential write, depth 8|qcow2|disk.qcow2|-w -c 16000 -d 8 -s 65536"
  "4 KiB write, depth 1, allocating|qcow2|fresh.qcow2|-w -c 5000 -d 1 -s 4096 -S $stride"
  "4 KiB write, depth 32, allocating|qcow2|fresh.qcow2|-w -c 5000 -d 32 -s 4096 -S $stride"
  "64 KiB sequential write, depth 8, allocating|qcow2|fresh.qcow2|-w -c 8000 -d 8 -s 65536"
)

# The seconds a run took, from either tool's "Run completed in X seconds."
seconds() {
    sed -n 's/^Run completed in \([0-9.]*\) seconds\.$/\1/p'
}

median() {
    sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

echo "| workload | format | vmdev | qemu-img bench | vmdev / qemu |"
echo "|---|---|---|---|---|"
for w in "${workloads[@]}"; do
    IFS='|' read -r name format file args <<< "$w"
    count=$(sed 's/.*-c \([0-9]*\).*/\1/' <<< "$args")
    bytes=$(sed 's/.*-s \([0-9]*\).*/\1/' <<< "$args")
    ours_times=() qemu_times=()
    for ((i = 0; i < runs; i++)); do
        # Turns alternate who goes first.
        order="ours qemu"
        [ $((i % 2)) = 1 ] && order="qemu ours"
        for tool in $order; do
            if [ "$file" = fresh.qcow2 ]; then
                rm -f "$dir/fresh.qcow2"
                qemu-img create -q -f qcow2 "$dir/fresh.qcow2" "${size_mib}M"
            fi
            # shellcheck disable=SC2086 # args are words
            if [ $tool = ours ]; then
                t=$("$ours" -f "$format" -t none -i io_uring $args "$dir/$file" | seconds)
                ours_times+=("$t")
            else
                t=$(qemu-img bench -f "$format" -t none -i io_uring $args "$dir/$file" | seconds)
                qemu_times+=("$t")
            fi
        done
    done
    ours_s=$(printf '%s\n' "${ours_times[@]}" | median)
    qemu_s=$(printf '%s\n' "${qemu_times[@]}" | median)
    awk -v name="$name" -v format="$format" -v n="$count" -v b="$bytes" \
        -v o="$ours_s" -v q="$qemu_s" 'BEGIN {
        if (b >= 65536)
            printf "| %s | %s | %.0f MB/s | %.0f MB/s | %.2fx |\n", name, format,
                   n * b / o / 1e6, n * b / q / 1e6, q / o
        else
            printf "| %s | %s | %.0f IOPS | %.0f IOPS | %.2fx |\n", name, format,
                   n / o, n / q, q / o
    }'
done
