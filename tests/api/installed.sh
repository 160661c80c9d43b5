#!/bin/sh
# installed.sh BUILD_DIR SOURCE_ROOT: install the library into a
# temporary destination (meson install --destdir) and build against it
# with pkg-config alone, as a VMM author's build would: tests/api/version_c.c
# linked to the shared library and to the archive, every program in
# examples/ linked to the shared library, and vmdev-run from its sources
# linked to the archive. Each must run; each example checks its own
# result.
set -eu
build=$1 root=$2
source=$root/tests/api/version_c.c
cc=${CC:-cc}
# A sanitized build's library needs its runtime in the program too.
case ${SANITIZE:-none} in none|'') ;; *) cc="$cc -fsanitize=$SANITIZE" ;; esac
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
meson install -C "$build" --destdir "$work/root" --no-rebuild --quiet
pcdir=$(dirname "$(find "$work/root" -name vmdev.pc | head -n 1)")
[ -f "$pcdir/vmdev.pc" ] || { echo "FAIL no vmdev.pc installed"; exit 1; }
# The sysroot puts the installed paths under the destination.
pc() {
    PKG_CONFIG_PATH=$pcdir PKG_CONFIG_SYSROOT_DIR=$work/root pkg-config "$@" vmdev
}
version=$(pc --modversion)
libdir=$work/root$(PKG_CONFIG_PATH=$pcdir pkg-config --variable=libdir vmdev)
# shellcheck disable=SC2046 # pkg-config's words are separate arguments
$cc -std=c11 -Wall -Wextra -Werror -DPROJECT_VERSION="\"$version\"" \
    $(pc --cflags) "$source" -o "$work/shared" $(pc --libs)
LD_LIBRARY_PATH=$libdir "$work/shared"
# The archive, and the libraries it needs (Requires.private) as the
# system has them: shared (Debian ships no static libsystemd for glib).
deps=$(pc --print-requires-private | cut -d ' ' -f 1)
# shellcheck disable=SC2046,SC2086
$cc -std=c11 -Wall -Wextra -Werror -DPROJECT_VERSION="\"$version\"" \
    $(pc --cflags) "$source" -o "$work/static" "$libdir/libvmdev.a" \
    $(pkg-config --libs $deps) -pthread
"$work/static"
echo "ok   $(basename "$source") built with pkg-config vmdev $version, shared and static"

for example in "$root"/examples/*.c; do
    name=$(basename "$example" .c)
    # shellcheck disable=SC2046
    $cc -std=c11 -Wall -Wextra -Werror $(pc --cflags) "$example" \
        -o "$work/$name" $(pc --libs)
    case $name in
    uart_to_file) set -- "$work/uart.out" ;;
    block_read_write) mkdir "$work/qcow2" "$work/raw"
                      LD_LIBRARY_PATH=$libdir "$work/$name" "$work/raw" raw
                      set -- "$work/qcow2" qcow2 ;;
    *) set -- ;;
    esac
    LD_LIBRARY_PATH=$libdir "$work/$name" "$@"
done
echo "ok   every example in examples/ built with pkg-config vmdev and run"

# vmdev-run, from its own sources, against the install alone: it uses
# nothing of the library that the headers and the archive do not give
# every VMM. Its --help must run.
# shellcheck disable=SC2046
$cc -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -Werror \
    $(pc --cflags) \
    $(pkg-config --cflags json-c) \
    -I"$root/tools/vmm" -I"$root/tools/common" "$root"/tools/vmm/*.c \
    "$root/tools/common/net_spec.c" "$root/tools/common/api_server.c" \
    -o "$work/vmdev-run" "$libdir/libvmdev.a" \
    $(pkg-config --libs $deps libseccomp json-c) -pthread
"$work/vmdev-run" --help > "$work/help.txt"
grep -q -- '--kernel' "$work/help.txt"
echo "ok   vmdev-run built from tools/vmm with pkg-config vmdev and the archive"
