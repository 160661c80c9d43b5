# Sourced by run.sh and boot-default.sh (`make guest-test`, `make run`),
# with $name their name for messages and their arguments: reads
# --build DIR --cache DIR, fetches the stock kernel and builds the test
# initramfs into the cache, and decides where the guest runs. Sets here,
# top, build and cache (absolute; the cache created), vmm (VMDEV_RUN, or
# the build's vmdev-run) and nested (1: inside a QEMU guest with nested
# KVM, as VMDEV_GUEST_NESTED says or, without it, whenever this machine's
# /dev/kvm cannot run a stock kernel). Exits 2 on a bad command line, 1
# without a VMM.

build="" cache=""
while [ $# -gt 0 ]; do
    case "$1" in
    --build) build="$2"; shift 2 ;;
    --cache) cache="$2"; shift 2 ;;
    *) echo "$name: unknown option $1" >&2; exit 2 ;;
    esac
done
[ -n "$build" ] && [ -n "$cache" ] ||
    { echo "usage: $name --build DIR --cache DIR" >&2; exit 2; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
build=$(cd "$build" && pwd)

vmm=${VMDEV_RUN:-$build/tools/vmm/vmdev-run}
case "$vmm" in /*) ;; *) vmm="$top/$vmm" ;; esac
[ -x "$vmm" ] || { echo "$name: no VMM at $vmm (build it first)" >&2; exit 1; }

"$top/scripts/fetch-kernel.sh" "$cache"
"$here/mkinitramfs.sh" "$cache/kernel" test "$cache/test-initramfs.cpio.gz"

nested=${VMDEV_GUEST_NESTED:-auto}
if [ "$nested" = auto ]; then
    gcc -O1 -o "$cache/kvm-usable" "$here/kvm-usable.c"
    if why=$("$cache/kvm-usable"); then
        nested=0
    else
        echo "$name: /dev/kvm cannot run a guest here ($why); nesting in QEMU"
        nested=1
    fi
fi
