#!/bin/bash
# boot-default.sh --build DIR --cache DIR
#
# `make run`: boots the stock Debian kernel with a busybox shell under
# vmdev-run with our devices (2 CPUs, a 64 MiB scratch disk as /dev/vda,
# virtio-rng, a virtio console written to CACHE/hvc0.log), the serial console
# on this terminal. `poweroff -f` (or leaving the shell) ends it. Where
# /dev/kvm cannot run a guest it runs inside a QEMU guest with nested KVM, as
# the tests do (VMDEV_GUEST_NESTED and VMDEV_RUN work as for run.sh).
set -eu

build="" cache=""
while [ $# -gt 0 ]; do
    case "$1" in
    --build) build="$2"; shift 2 ;;
    --cache) cache="$2"; shift 2 ;;
    *) echo "boot-default.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[ -n "$build" ] && [ -n "$cache" ] ||
    { echo "usage: $0 --build DIR --cache DIR" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
build=$(cd "$build" && pwd)
vmm=${VMDEV_RUN:-$build/tools/vmm/vmdev-run}
case "$vmm" in /*) ;; *) vmm="$top/$vmm" ;; esac
[ -x "$vmm" ] || { echo "boot-default.sh: no VMM at $vmm (build it first)" >&2; exit 1; }

"$top/scripts/fetch-kernel.sh" "$cache"
"$here/mkinitramfs.sh" "$cache/kernel" test "$cache/test-initramfs.cpio.gz"
disk="$cache/scratch.img"
[ -f "$disk" ] || truncate -s 64M "$disk"

vm=("$vmm" --kernel "$cache/kernel/vmlinuz"
    --initramfs "$cache/test-initramfs.cpio.gz"
    --cmdline "console=ttyS0 quiet vmdev.test=shell"
    --cpus 2 --memory 512M --disk "path=$disk" --rng
    --console "file=$cache/hvc0.log" --serial stdio)

mode=${VMDEV_GUEST_NESTED:-auto}
if [ "$mode" = auto ]; then
    gcc -O1 -o "$cache/kvm-usable" "$here/kvm-usable.c"
    if why=$("$cache/kvm-usable"); then mode=0; else
        echo "boot-default.sh: /dev/kvm cannot run a guest here ($why); nesting in QEMU"
        mode=1
    fi
fi
if [ "$mode" = 1 ]; then
    # The outer guest sees this machine read-only: the scratch disk and the
    # console log live in its /run instead, for that boot only.
    vm=("${vm[@]/#path=$disk/path=/run/vmdev-scratch.img}")
    vm=("${vm[@]/#file=$cache\/hvc0.log/file=/run/vmdev-hvc0.log}")
    exec "$here/nested.sh" --interactive --cache "$cache" -- \
        bash -c 'truncate -s 64M /run/vmdev-scratch.img && exec "$@"' sh "${vm[@]}"
fi
exec "${vm[@]}"
