#!/bin/sh
# mkinitramfs.sh KERNEL_DIR ROLE OUT
#
# Builds a busybox initramfs (cpio newc, gzip) for the kernel that
# scripts/fetch-kernel.sh put in KERNEL_DIR. ROLE picks the /init and modules:
#   test    guest/init: virtio modules, the in-guest tests of guest/tests/
#   nested  guest/nested-init: kvm-amd, 9p, tun, bridge, veth and virtio-serial, for the outer QEMU guest that
#           gives the tests a /dev/kvm on machines without one
#   bench   bench/guest-init: no modules; marks reaching init and powers off
#   netbench  as test, with iperf3 (and its libraries, from this machine),
#           bench/guest/*.sh among the tests and bench/guest/*.c built
#           static into /bin, for bench/net.sh and bench/blk.sh
set -eu

[ $# -eq 3 ] || { echo "usage: $0 KERNEL_DIR test|nested|bench|netbench OUT" >&2; exit 2; }
kernel="$1" role="$2" out="$3"
here=$(cd "$(dirname "$0")" && pwd)

case "$role" in
test|netbench)
        init="$here/guest/init"
        load="virtio_pci virtio_mmio virtio_blk virtio_console virtio_rng virtio_net" ;;
nested) init="$here/guest/nested-init"
        load="virtio_pci kvm_amd 9pnet_virtio 9p tun bridge veth virtio_console" ;;
bench)  init="$here/../../bench/guest-init"
        load="" ;;
*)      echo "mkinitramfs: unknown role $role" >&2; exit 2 ;;
esac

busybox=/bin/busybox
"$busybox" --list >/dev/null 2>&1 && ldd "$busybox" 2>&1 | grep -q 'not a dynamic' ||
    { echo "mkinitramfs: $busybox must be busybox-static" >&2; exit 1; }

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT INT TERM
mkdir -p "$root/bin" "$root/proc" "$root/sys" "$root/dev" "$root/tmp" \
    "$root/modules" "$root/tests"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
cp "$init" "$root/init"
chmod 755 "$root/init"
cp "$here"/guest/tests/*.sh "$root/tests/"
# The test guest's own tools, static (the initramfs has no libc).
if [ "$role" = test ] || [ "$role" = netbench ]; then
    gcc -static -O2 -Wall -Wextra -Werror -o "$root/bin/channels" "$here/guest/channels.c"
    gcc -static -O2 -Wall -Wextra -Werror -o "$root/bin/coalesce" "$here/guest/coalesce.c"
fi
# Dynamically linked tools, with the libraries ldd names at their paths.
if [ "$role" = netbench ]; then
    tool=$(command -v iperf3) ||
        { echo "mkinitramfs: netbench needs iperf3 (apt-get install iperf3)" >&2; exit 1; }
    cp "$tool" "$root/bin/iperf3"
    for lib in $(ldd "$tool" | grep -o '/[^ ]*'); do
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done
    cp "$here"/../../bench/guest/*.sh "$root/tests/"
    for tool in "$here"/../../bench/guest/*.c; do
        gcc -static -O2 -Wall -Wextra -Werror -o "$root/bin/$(basename "$tool" .c)" "$tool"
    done
fi

# Load order: each module after the modules its modinfo depends= names.
depends() { tr '\0' '\n' < "$kernel/modules/$1.ko" | sed -n 's/^depends=//p' | tr ',' ' '; }
add_module() {
    grep -qx "$1" "$root/modules/order" 2>/dev/null && return 0
    [ -f "$kernel/modules/$1.ko" ] ||
        { echo "mkinitramfs: $1.ko missing from $kernel/modules" >&2; exit 1; }
    for dep in $(depends "$1"); do add_module "$dep"; done
    cp "$kernel/modules/$1.ko" "$root/modules/"
    echo "$1" >> "$root/modules/order"
}
: > "$root/modules/order"
for m in $load; do add_module "$m"; done

mkdir -p "$(dirname "$out")"
# Two builds of one file at once (two harnesses) each write their own.
(cd "$root" && find . | sort | cpio --quiet -o -H newc -R 0:0) | gzip -6 > "$out.tmp.$$"
mv "$out.tmp.$$" "$out"
