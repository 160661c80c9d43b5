#!/bin/bash
# blk-job.sh --vmm VMM [--vmm-before VMM] --kernel FILE --initrd FILE
#            --seconds S --work DIR [--configs "vmdev qemu vmdev-before"]
#
# Runs where /dev/kvm works (inside bench/blk.sh's nested guest): 4 KiB
# random reads at depth 32 (16 on each of two vCPUs, bench/guest/
# randread.sh) of a raw image on a disk with two request queues, the same
# kernel and initramfs under vmdev-run and under QEMU with KVM:
#   vmdev         vmdev-run --disk num_queues=2 (io_uring, writeback)
#   vmdev-before  the same with --vmm-before, an earlier vmdev-run
#   qemu          QEMU's virtio-blk-pci, num-queues=2, on an iothread,
#                 aio=io_uring, writeback (QEMU 7.2 serves a disk from one
#                 iothread)
# The image (128 MiB of random bytes) lies on tmpfs, where O_DIRECT does
# not exist before Linux 6.6: both VMMs read through the host's page
# cache (cache=none is not possible there), so this measures the request
# path, not a disk. vmdev-run serves the queues on two I/O threads (its
# default, one per vCPU), QEMU 7.2 on its one iothread. Two
# vCPUs, 512 MiB. A line "CONFIG iops" for each that measured goes to
# DIR/results.
set -u
vmm="" before="" kernel="" initrd="" seconds=10 work="" configs="vmdev qemu"
while [ $# -gt 0 ]; do
    case "$1" in
    --vmm) vmm="$2"; shift 2 ;;
    --vmm-before) before="$2"; shift 2 ;;
    --kernel) kernel="$2"; shift 2 ;;
    --initrd) initrd="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    --configs) configs="$2"; shift 2 ;;
    *) echo "blk-job: unknown option $1" >&2; exit 2 ;;
    esac
done
rm -rf "$work"
mkdir -p "$work"
# On tmpfs (the nested guest's /run; elsewhere /dev/shm unless
# VMDEV_BENCH_TMP names another).
tmp=${VMDEV_BENCH_TMP:-}
for d in /run /dev/shm /tmp; do
    [ -n "$tmp" ] && break
    [ -w "$d" ] && tmp=$d
done
image=$(mktemp "$tmp/vmdev-randread.XXXXXX")
trap 'rm -f "$image"' EXIT
dd if=/dev/urandom of="$image" bs=1M count=128 status=none ||
    { echo "blk-job: cannot write the image" >&2; exit 1; }

append="console=ttyS0 quiet panic=-1 vmdev.test=randread"
append="$append vmdev.test_timeout=$((seconds + 60)) vmdev.randread_serial=randread"
append="$append vmdev.randread_seconds=$seconds vmdev.randread_depth=16 vmdev.randread_jobs=2"
limit=$((seconds + 120))

launch() {
    case "$1" in
    vmdev|vmdev-before)
        local binary=$vmm
        [ "$1" = vmdev ] || binary=$before
        exec timeout -k 5 "$limit" "$binary" --kernel "$kernel" --initramfs "$initrd" \
            --cpus 2 --memory 512M --serial stdio --cmdline "$append" \
            --disk "path=$image,num_queues=2,serial=randread,cache=writeback" ;;
    qemu)
        exec timeout -k 5 "$limit" qemu-system-x86_64 -enable-kvm -cpu host -smp 2 -m 512M -M q35 \
            -display none -nodefaults -no-reboot -serial stdio \
            -kernel "$kernel" -initrd "$initrd" -append "$append" \
            -object iothread,id=io0 \
            -drive "file=$image,if=none,id=d0,format=raw,aio=io_uring,cache=writeback" \
            -device virtio-blk-pci,drive=d0,num-queues=2,iothread=io0,serial=randread ;;
    esac
}

# one CONFIG: prints "CONFIG iops", or fails.
one() {
    local log="$work/$1.log"
    (launch "$1") < /dev/null > "$log" 2>&1
    local status=$?
    local iops queues
    iops=$(tr -d '\r' < "$log" | sed -n 's/^VMDEV-DATA randread.iops //p' | head -n 1)
    queues=$(tr -d '\r' < "$log" | sed -n 's/^VMDEV-DATA randread.queues //p' | head -n 1)
    if [ -z "$iops" ] || [ "$queues" != 2 ]; then
        echo "blk-job: $1 measured nothing or not on two queues ($queues; the VMM's exit status $status); its output:" >&2
        tr -d '\r' < "$log" | grep -v "VMDEV-DATA modules" | tail -n 15 >&2
        return 1
    fi
    echo "$1 $iops"
}

for c in $configs; do
    line=$(one "$c") || continue
    echo "measured: $line"
    echo "$line" >> "$work/results"
done
