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
. "$top/bench/guest-rounds.sh"
guest_bench_prepare
job=("$top/bench/net-job.sh" "${guest_job[@]}" --seconds "$seconds")
job+=("${pcap[@]}")
all_configs=${configs:-vmdev-tap qemu-tap vmdev-slirp qemu-slirp vmdev-passt qemu-passt}
# iperf's load meets the nested layer's faults often: one guest each.
guest_bench_rounds netbench "$runs" "$all_configs" $((seconds * 2 + 240)) "${job[@]}"

echo "round CONFIG guest_to_host_mbits host_to_guest_mbits:"
cat "$results"
echo "median over $runs rounds (of those that measured): CONFIG guest_to_host host_to_guest rounds"
for c in $all_configs; do
    tx=$(awk -v n="$c" '$2 == n { print $3 }' "$results" | median)
    rx=$(awk -v n="$c" '$2 == n { print $4 }' "$results" | median)
    echo "MEDIAN $c ${tx:-none} ${rx:-none} $(awk -v n="$c" '$2 == n' "$results" | wc -l)"
done
