#!/bin/bash
# bench/boot.sh [--runs N]
#
# Boot to init of the stock Debian 12 kernel with a minimal busybox init:
# vmdev-run against QEMU with KVM (-M q35 and -M microvm), same kernel,
# initramfs, one vCPU and 256 MiB, in the same run. Where /dev/kvm cannot run
# a guest (as on the project's CI machines) everything runs inside the
# nested QEMU (TCG, SVM) guest the guest tests use, so the absolute numbers
# are nested-TCG numbers; the ratios are what to compare.
# Prints each boot and the medians; docs/benchmarks.md records a run.
set -eu
runs=5
while [ $# -gt 0 ]; do
    case "$1" in
    --runs) runs="$2"; shift 2 ;;
    *) echo "boot.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
top=$(cd "$(dirname "$0")/.." && pwd)
cache="$top/.cache/guest"
mkdir -p "$cache"
make -C "$top" --no-print-directory build >/dev/null
"$top/scripts/fetch-kernel.sh" "$cache"
"$top/tests/guest/mkinitramfs.sh" "$cache/kernel" bench "$cache/bench-initramfs.cpio.gz"
job=("$top/bench/boot-job.sh" --vmm "$top/build/tools/vmm/vmdev-run"
     --kernel "$cache/kernel/vmlinuz" --initrd "$cache/bench-initramfs.cpio.gz"
     --runs "$runs" --work /run/vmdev-bench)
gcc -O1 -o "$cache/kvm-usable" "$top/tests/guest/kvm-usable.c"
if "$cache/kvm-usable" >/dev/null; then
    "${job[@]}"
else
    VMDEV_NESTED_TIMEOUT=$((120 + runs * 180)) \
        "$top/tests/guest/nested.sh" --cache "$cache" -- "${job[@]}"
fi
