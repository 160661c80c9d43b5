#!/bin/sh
# qemu-vmdev-run.sh: QEMU behind vmdev-run's command line, so the guest tests
# can be checked against a known-good VMM (VMDEV_RUN=tests/guest/qemu-vmdev-run.sh).
# It is a development aid; the committed harness tests vmdev-run.
set -eu
args="-machine q35,accel=${VMDEV_QEMU_ACCEL:-kvm} -cpu ${VMDEV_QEMU_CPU:-host,-arch-capabilities} -nodefaults -display none -vga none
-monitor none -no-reboot"
set -f
qemu="qemu-system-x86_64"
disks=0
nets=0
add() { args="$args $*"; }
serial=stdio
console=off
while [ $# -gt 0 ]; do
    case "$1" in
    --kernel) kernel="$2"; shift 2 ;;
    --initramfs) initrd="$2"; shift 2 ;;
    --cmdline) cmdline="$2"; shift 2 ;;
    --cpus) add -smp "$2"; shift 2 ;;
    --memory) add -m "$2"; shift 2 ;;
    --disk)
        file="" ro=""
        for kv in $(echo "$2" | tr , ' '); do
            case "$kv" in
            path=*) file="${kv#path=}" ;;
            readonly=on) ro=",readonly=on" ;;
            *) echo "qemu-vmdev-run: unknown disk option $kv" >&2; exit 2 ;;
            esac
        done
        add -drive "file=$file,format=raw,if=none,id=disk$disks$ro" \
            -device "virtio-blk-pci,drive=disk$disks"
        disks=$((disks + 1)); shift 2 ;;
    --serial) serial="$2"; shift 2 ;;
    --console) console="$2"; shift 2 ;;
    --net)
        sock="" mac="" user=""
        for kv in $(echo "$2" | tr , ' '); do
            case "$kv" in
            slirp) user="user,id=net$nets" ;;
            hostfwd=*|ipv6=*|restrict=*) user="$user,$kv" ;;
            socket=*) sock="${kv#socket=}" ;;
            mac=*) mac=",mac=${kv#mac=}" ;;
            # one queue; QEMU's own sizes and no host-side coalescing
            queues=*|queue_size=*|mtu=*|coalesce_*|id=*) ;;
            *) echo "qemu-vmdev-run: unknown net option $kv" >&2; exit 2 ;;
            esac
        done
        if [ -n "$user" ]; then
            add -netdev "$user"
        else
            add -netdev "stream,id=net$nets,server=off,addr.type=unix,addr.path=$sock"
        fi
        add -device "virtio-net-pci,netdev=net$nets$mac"
        nets=$((nets + 1)); shift 2 ;;
    --stats) shift ;; # vmdev-run's counters; QEMU has none to print
    --rng) add -object rng-random,filename=/dev/urandom,id=rng0 \
               -device virtio-rng-pci,rng=rng0; shift ;;
    *) echo "qemu-vmdev-run: unknown option $1" >&2; exit 2 ;;
    esac
done
case "$serial" in
stdio) add -serial stdio ;;
file=*) add -serial "file:${serial#file=}" ;;
off) ;;
esac
case "$console" in
file=*) add -device virtio-serial-pci \
            -chardev "file,id=hvc,path=${console#file=}" \
            -device virtconsole,chardev=hvc ;;
hvc) add -device virtio-serial-pci -chardev stdio,id=hvc \
         -device virtconsole,chardev=hvc ;;
off) ;;
esac
# shellcheck disable=SC2086 # $args is split on purpose (no spaces inside)
exec $qemu $args -kernel "$kernel" ${initrd:+-initrd "$initrd"} \
    ${cmdline:+-append "$cmdline"}
