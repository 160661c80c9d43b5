#!/bin/bash
# bench/net.sh [--runs N] [--seconds S] [--configs "vmdev-tap qemu-slirp ..."]
#              [--pcap]
#
# iperf3 guest-to-host and host-to-guest, vmdev-run against QEMU with KVM
# on the same backend kind (tap on a bridge, libslirp, passt), same kernel,
# same initramfs, in turns in the same run (bench/net-job.sh has the
# setup). Where /dev/kvm cannot run a guest (as on the project's CI
# machines) everything runs inside the nested QEMU (TCG, SVM) guest the
# guest tests use, so absolute numbers are nested-TCG numbers; compare the
# ratios. --pcap has each VMM capture its card's frames (vmdev-run's
# pcap=, QEMU's filter-dump) into the logs as ROUND-CONFIG.pcap, for
# bench/tcp-window.sh; the captures
# slow it down, so such a run measures nothing worth keeping. Installs
# iperf3 if missing; needs root (namespaces, a tap).
# docs/benchmarks.md records runs.
set -eu
runs=3 seconds=5 configs="" pcap=()
while [ $# -gt 0 ]; do
    case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --configs) configs="$2"; shift 2 ;;
    --pcap) pcap=(--pcap); shift ;;
    *) echo "net.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
top=$(cd "$(dirname "$0")/.." && pwd)
cache="$top/.cache/guest"
mkdir -p "$cache"
command -v iperf3 > /dev/null || {
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends iperf3 > /dev/null
}
make -C "$top" --no-print-directory deps build > /dev/null
"$top/scripts/fetch-kernel.sh" "$cache"
"$top/tests/guest/mkinitramfs.sh" "$cache/kernel" netbench "$cache/netbench-initramfs.cpio.gz"
job=("$top/bench/net-job.sh" --vmm "$top/build/tools/vmm/vmdev-run"
     --kernel "$cache/kernel/vmlinuz" --initrd "$cache/netbench-initramfs.cpio.gz"
     --seconds "$seconds")
gcc -O1 -o "$cache/kvm-usable" "$top/tests/guest/kvm-usable.c"
results="$cache/netbench-results" logs="$cache/netbench-logs"
: > "$results"
rm -rf "$logs"
mkdir -p "$logs"
all_configs=${configs:-vmdev-tap qemu-tap vmdev-slirp qemu-slirp vmdev-passt qemu-passt}
# Where nested, each guest in a fresh nested guest of its own: the nested
# layer's fault (docs/architecture.md), which iperf's load meets often,
# then costs that one measurement, not the rest of the round. What each
# printed stays in $logs.
for ((r = 1; r <= runs; r++)); do
    for c in $all_configs; do
        rm -rf "$cache/netbench-work" "$cache/netbench/work"
        if "$cache/kvm-usable" > /dev/null; then
            work="$cache/netbench-work"
            "${job[@]}" "${pcap[@]}" --configs "$c" --work "$work" > "$logs/$r-$c.job" 2>&1 || true
        else
            work="$cache/netbench/work" # the nested guest's share
            VMDEV_NESTED_TIMEOUT=$((seconds * 2 + 240)) \
                "$top/tests/guest/nested.sh" --name netbench --cache "$cache" -- \
                "${job[@]}" "${pcap[@]}" --configs "$c" --work "$work" > "$logs/$r-$c.job" 2>&1 || true
        fi
        cp "$work/$c.log" "$logs/$r-$c.log" 2>/dev/null || true
        cp "$work/$c.pcap" "$logs/$r-$c.pcap" 2>/dev/null || true
        if grep -q "^$c " "$work/results" 2>/dev/null; then
            echo "round $r: $(cat "$work/results")"
            sed "s/^/$r /" "$work/results" >> "$results"
        else
            echo "round $r: $c measured nothing (see $logs/$r-$c.*)"
        fi
    done
done

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
echo "round CONFIG guest_to_host_mbits host_to_guest_mbits:"
cat "$results"
echo "median over $runs rounds (of those that measured): CONFIG guest_to_host host_to_guest rounds"
for c in $all_configs; do
    tx=$(awk -v n="$c" '$2 == n { print $3 }' "$results" | median)
    rx=$(awk -v n="$c" '$2 == n { print $4 }' "$results" | median)
    echo "MEDIAN $c ${tx:-none} ${rx:-none} $(awk -v n="$c" '$2 == n' "$results" | wc -l)"
done
