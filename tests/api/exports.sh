#!/bin/sh
# exports.sh LIBRARY...: the shared library and the installed archive
# export the public API (vmdev_*) and nothing else (src/libvmdev.map,
# src/public-archive.sh), so an embedder's program can call nothing
# internal and no internal name clashes with one of its own.
set -eu
failed=0
for lib in "$@"; do
    case $lib in
    *.a) all=$(nm -g --defined-only "$lib" | awk 'NF == 3 { print $3 }') ;;
    *) all=$(nm -D --defined-only "$lib" | awk '{ print $3 }' | sed 's/@.*//') ;;
    esac
    others=$(echo "$all" | grep -v '^vmdev_' | grep -v '^$' || true)
    if [ -n "$others" ]; then
        echo "FAIL $lib exports symbols outside vmdev_:"
        echo "$others" | sed 's/^/  /' | head -n 20
        failed=1
    else
        echo "ok   $(basename "$lib") exports $(echo "$all" | grep -c .) symbols, all vmdev_"
    fi
done
exit $failed
