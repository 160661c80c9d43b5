#!/bin/sh
# fetch-kernel.sh CACHE_DIR
#
# Puts the stock Debian 12 kernel (the package linux-image-amd64 depends on)
# into CACHE_DIR/kernel for the guest tests:
#   CACHE_DIR/kernel/vmlinuz
#   CACHE_DIR/kernel/modules/NAME.ko   the modules listed below and every
#                                       module they depend on, flat, named by
#                                       module name (dashes become '_')
#   CACHE_DIR/kernel/release           e.g. 6.1.0-56-amd64
#   CACHE_DIR/kernel/package           the .deb's file name (provenance)
# A filled cache is left alone (delete CACHE_DIR/kernel to refresh it). Only
# apt-get and dpkg-deb are needed, so this works on a fresh Debian 12 machine.
set -eu

[ $# -eq 1 ] || { echo "usage: $0 CACHE_DIR" >&2; exit 2; }
out="$1/kernel"

# Modules the guests load. The guest under test needs the virtio ones; the
# outer QEMU guest of the nested-KVM path needs kvm, 9p, tun (the net and
# tap tests' taps), bridge and veth (the tap test's bridge and namespace).
# Dependencies are found from each module's own modinfo, so list only what
# is loaded by name.
wanted="virtio_pci virtio_mmio virtio_blk virtio_console virtio_rng virtio_net
virtio_input virtio_balloon kvm_amd kvm_intel 9p 9pnet_virtio tun bridge veth"

# A cache from before a module was added to the list is fetched again.
have_all() {
    [ -s "$out/vmlinuz" ] && [ -s "$out/release" ] || return 1
    for m in $wanted; do [ -f "$out/modules/$m.ko" ] || return 1; done
}
have_all && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

# The versioned image package (linux-image-6.1.0-NN-amd64) the meta-package
# points at. A machine that never ran apt-get update has no candidate yet.
image_package() {
    apt-cache depends linux-image-amd64 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n 1
}
pkg=$(image_package)
if [ -z "$pkg" ]; then
    echo "fetch-kernel: no candidate for linux-image-amd64, running apt-get update"
    $SUDO apt-get update -qq
    pkg=$(image_package)
fi
[ -n "$pkg" ] || { echo "fetch-kernel: cannot resolve linux-image-amd64" >&2; exit 1; }

mkdir -p "$1"
work=$(mktemp -d "$1/fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM
# apt drops root to the _apt user to download; give it a directory it can
# write so the download stays sandboxed (no warning, no unsandboxed fetch).
chmod 755 "$work"
mkdir "$work/deb"
if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then
    chown _apt "$work/deb"
fi
echo "fetch-kernel: downloading $pkg"
(cd "$work/deb" && apt-get download -q "$pkg" >/dev/null)
deb=$(ls "$work/deb"/*.deb)
echo "fetch-kernel: unpacking $(basename "$deb")"
dpkg-deb -x "$deb" "$work/root"

release=$(ls "$work/root/lib/modules")
moddir="$work/root/lib/modules/$release/kernel"
[ -f "$work/root/boot/vmlinuz-$release" ] ||
    { echo "fetch-kernel: no vmlinuz in $deb" >&2; exit 1; }

# Index: module name -> file. Module names use '_' where files may use '-'
# (virtio-rng.ko is module virtio_rng).
find "$moddir" -name '*.ko' | while read -r f; do
    n=$(basename "$f" .ko | tr - _)
    echo "$n $f"
done > "$work/index"

module_file() { awk -v n="$1" '$1 == n { print $2; exit }' "$work/index"; }
module_depends() {
    tr '\0' '\n' < "$1" | sed -n 's/^depends=//p' | tr ',' ' '
}

staging="$work/kernel"
mkdir -p "$staging/modules"
todo="$wanted"
while [ -n "$(echo $todo)" ]; do
    next=""
    for m in $todo; do
        [ -f "$staging/modules/$m.ko" ] && continue
        f=$(module_file "$m")
        [ -n "$f" ] || { echo "fetch-kernel: module $m not in $pkg" >&2; exit 1; }
        cp "$f" "$staging/modules/$m.ko"
        next="$next $(module_depends "$f")"
    done
    todo="$next"
done

cp "$work/root/boot/vmlinuz-$release" "$staging/vmlinuz"
echo "$release" > "$staging/release"
basename "$deb" > "$staging/package"
rm -rf "$out"
mv "$staging" "$out"
echo "fetch-kernel: $release with $(ls "$out/modules" | wc -l) modules in $out"
