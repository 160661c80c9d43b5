#!/bin/sh
# Install the Debian 12 packages the build, the tests and the guest harness
# need; packages already present are left alone, so a second run is quick.
set -eu

# Guest tests (tests/guest/): busybox-static and cpio build the initramfs,
# gcc builds the /dev/kvm probe, qemu-system-x86 runs them nested where
# /dev/kvm can't (and stands in for vmdev-run when checking the harness);
# the kernel comes from apt-get download (scripts/fetch-kernel.sh). g++
# compiles the public headers as C++ (tests/api). The
# library needs liburing (the block I/O engine), zlib and libzstd (compressed
# qcow2 clusters), libslirp (user-mode networking) and libpcap (packet
# captures); vmdev-run confines its threads with libseccomp and speaks
# its control API in JSON with json-c; qemu-utils' qemu-img makes and checks the images the qcow2
# tests read; passt is the peer of the guest test of --net socket=
# (tests/guest/interop.sh), which reads vmdev-run's capture with tcpdump.
packages="meson ninja-build gcc g++ clang libclang-rt-14-dev pkg-config liburing-dev
zlib1g-dev libzstd-dev libslirp-dev libglib2.0-dev libpcap-dev libseccomp-dev
libjson-c-dev
busybox-static cpio e2fsprogs qemu-system-x86 qemu-utils passt tcpdump"

missing=""
for p in $packages; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "install-deps: installing$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
    --no-install-recommends $missing >/dev/null
