#!/bin/bash
# bench/hotplug.sh [--runs N]
#
# From a hot-plug request to the guest's block device: vmdev-run's
# device-add against QEMU's device_add of a virtio-blk-pci on a
# pcie-root-port through QMP, same kernel and initramfs, in the same run
# (bench/hotplug-job.py). Where /dev/kvm cannot run a guest (as on the
# project's CI machines) both run inside the nested QEMU (TCG, SVM) guest
# the guest tests use, so the absolute numbers are nested-TCG numbers; the
# ratio is what to compare. Removal is the guest's own (its slot powered
# off through sysfs), so Linux's 5-second attention-button wait is not in
# it. docs/benchmarks.md records a run.
set -eu
runs=10
while [ $# -gt 0 ]; do
    case "$1" in
    --runs) runs="$2"; shift 2 ;;
    *) echo "hotplug.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
top=$(cd "$(dirname "$0")/.." && pwd)
cache="$top/.cache/guest"
mkdir -p "$cache"
make -C "$top" --no-print-directory build >/dev/null
"$top/scripts/fetch-kernel.sh" "$cache"
"$top/tests/guest/mkinitramfs.sh" "$cache/kernel" test "$cache/hotbench-initramfs.cpio.gz"
job=("$(command -v python3)" "$top/bench/hotplug-job.py" --vmm "$top/build/tools/vmm/vmdev-run"
     --kernel "$cache/kernel/vmlinuz" --initrd "$cache/hotbench-initramfs.cpio.gz"
     --runs "$runs" --work /run/vmdev-hotbench)
gcc -O1 -o "$cache/kvm-usable" "$top/tests/guest/kvm-usable.c"
if "$cache/kvm-usable" >/dev/null; then
    "${job[@]}"
else
    VMDEV_NESTED_TIMEOUT=$((300 + runs * 60)) \
        "$top/tests/guest/nested.sh" --cache "$cache" -- "${job[@]}"
fi
