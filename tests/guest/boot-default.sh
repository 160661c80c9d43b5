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

name=boot-default.sh
. "$(dirname "$0")/prepare.sh"

disk="$cache/scratch.img"
[ -f "$disk" ] || truncate -s 64M "$disk"

. "$here/default-guest.sh"
default_guest "$vmm" "$cache/kernel/vmlinuz" "$cache/test-initramfs.cpio.gz" \
    "$disk" "$cache/hvc0.log"

if [ "$nested" = 1 ]; then
    # The outer guest sees this machine read-only: the scratch disk and the
    # console log live in its /run instead, for that boot only.
    vm=("${vm[@]/#path=$disk/path=/run/vmdev-scratch.img}")
    vm=("${vm[@]/#file=$cache\/hvc0.log/file=/run/vmdev-hvc0.log}")
    exec "$here/nested.sh" --interactive --cache "$cache" -- \
        bash -c 'truncate -s 64M /run/vmdev-scratch.img && exec "$@"' sh "${vm[@]}"
fi
exec "${vm[@]}"
