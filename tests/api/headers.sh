#!/bin/sh
# headers.sh CC CXX INCLUDE_DIR: every public header, and <vmdev/vmdev.h>,
# compiles alone (included twice, for its guard) as strict C11 and as
# C++17 inside a C++ translation unit, warnings as errors: what a VMM
# author's own build may use.
set -eu
cc=$1 cxx=$2 include=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0
for h in "$include"/vmdev/*.h; do
    name=vmdev/$(basename "$h")
    printf '#include <%s>\n#include <%s>\nint main(void) { return 0; }\n' \
        "$name" "$name" > "$work/one.c"
    cp "$work/one.c" "$work/one.cc"
    if ! "$cc" -std=c11 -Wall -Wextra -Wpedantic -Werror -I"$include" \
            -c "$work/one.c" -o "$work/one.o"; then
        echo "FAIL $name as C11"
        failed=1
    fi
    if ! "$cxx" -std=c++17 -Wall -Wextra -Wpedantic -Werror -I"$include" \
            -c "$work/one.cc" -o "$work/one.o"; then
        echo "FAIL $name as C++17"
        failed=1
    fi
done
[ $failed = 0 ] && echo "ok   every header in $include/vmdev alone, C11 and C++17"
exit $failed
