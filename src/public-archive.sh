#!/bin/sh
# public-archive.sh INTERNAL_ARCHIVE OUTPUT: the archive a VMM links. All
# of the library's objects become one (ld -r), in which every global
# symbol but the public API (vmdev_*) is made local (objcopy), so an
# embedder's program can neither call an internal function nor clash
# with one's name; references between the library's own files were
# joined by ld -r and keep working.
set -eu
in=$1 out=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
${LD:-ld} -r --whole-archive "$in" -o "$work/vmdev.o"
${OBJCOPY:-objcopy} --wildcard --keep-global-symbol='vmdev_*' "$work/vmdev.o"
rm -f "$out"
${AR:-ar} rcs "$out" "$work/vmdev.o"
