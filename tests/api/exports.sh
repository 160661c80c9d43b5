#!/bin/sh
# exports.sh LIBRARY: the shared library exports the public API (vmdev_*)
# and nothing else (src/libvmdev.map), so an embedder's program can call
# nothing internal and no internal name clashes with its own.
set -eu
lib=$1
all=$(nm -D --defined-only "$lib" | awk '{ print $3 }' | sed 's/@.*//')
others=$(echo "$all" | grep -v '^vmdev_' | grep -v '^$' || true)
if [ -n "$others" ]; then
    echo "FAIL $lib exports symbols outside vmdev_:"
    echo "$others" | sed 's/^/  /'
    exit 1
fi
echo "ok   $lib exports $(echo "$all" | grep -c .) symbols, all vmdev_"
