#!/bin/bash
# run.sh --build DIR --cache DIR
#
# The guest tests: fetches the stock Debian kernel, builds the busybox
# initramfs and runs tests/guest/suite.sh with vmdev-run (DIR/tools/vmm/
# vmdev-run). Where this machine's /dev/kvm cannot run a guest, the suite runs
# inside a QEMU (TCG) guest whose CPU has SVM, with KVM nested (nested.sh).
# VMDEV_GUEST_NESTED=1 forces that path, =0 forbids it.
# VMDEV_RUN=PROGRAM replaces vmdev-run (e.g. tests/guest/qemu-vmdev-run.sh to
# check the harness itself against QEMU).
set -eu

build="" cache=""
while [ $# -gt 0 ]; do
    case "$1" in
    --build) build="$2"; shift 2 ;;
    --cache) cache="$2"; shift 2 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[ -n "$build" ] && [ -n "$cache" ] ||
    { echo "usage: $0 --build DIR --cache DIR" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)
build=$(cd "$build" && pwd)

vmm=${VMDEV_RUN:-$build/tools/vmm/vmdev-run}
case "$vmm" in /*) ;; *) vmm="$top/$vmm" ;; esac
if [ ! -x "$vmm" ]; then
    echo "run.sh: no VMM at $vmm (build it first)" >&2
    exit 1
fi

t0=$EPOCHREALTIME
"$top/scripts/fetch-kernel.sh" "$cache"
"$here/mkinitramfs.sh" "$cache/kernel" test "$cache/test-initramfs.cpio.gz"

mode=${VMDEV_GUEST_NESTED:-auto}
if [ "$mode" = auto ]; then
    gcc -O1 -o "$cache/kvm-usable" "$here/kvm-usable.c"
    if why=$("$cache/kvm-usable"); then
        mode=0
    else
        echo "run.sh: /dev/kvm cannot run a guest here ($why); nesting in QEMU"
        mode=1
    fi
fi

# retried COMMAND...: runs COMMAND; under nested KVM, once more when it
# failed by the nested layer's known faults. That layer (KVM in a TCG guest
# whose SVM lacks NRIPS and decode assists) has two, each seen in about
# one full run of four: the outer QEMU guest freezes outright (the job
# never finishes: 75), or the inner guest's vCPU stops for good in an
# endless round of exits inside the outer KVM, with nothing of ours on the
# stack (the suite's 3: no test failed before the stop, or a vCPU bears
# the fault's mark, CR2 equal to RIP; docs/architecture.md has the
# evidence). Either gets one more try, and says so; any other failure
# does not.
retried() {
    local attempt rc
    for attempt in 1 2; do
        "$@"
        rc=$?
        [ "$mode" = 1 ] && [ $attempt = 1 ] || break
        case $rc in
        75) echo "run.sh: the outer QEMU guest froze; retrying once" ;;
        3) echo "run.sh: a guest stopped by the nested KVM's fault (see above); retrying once" ;;
        *) break ;;
        esac
    done
    return $rc
}

# VMDEV_GUEST_TESTS=a,b,... picks tests: the suite's (suite.sh), and
# "interop" for the tests with several VMs (interop.sh: the switch, QEMU,
# passt). Unset, all run.
suite_tests=$(echo ",${VMDEV_GUEST_TESTS:-}," | sed 's/,interop,/,/g; s/^,//; s/,$//')
run_interop=1
if [ -n "${VMDEV_GUEST_TESTS:-}" ]; then
    case ",$VMDEV_GUEST_TESTS," in *,interop,*) ;; *) run_interop=0 ;; esac
    # An empty list runs no suite; unset, the suite's own list.
    export VMDEV_GUEST_TESTS=$suite_tests
fi

set +e
rc=0
if [ "${VMDEV_GUEST_TESTS-unset}" = "" ]; then
    : # only interop asked for
elif [ "$mode" = 1 ]; then
    retried "$here/nested.sh" --cache "$cache" -- \
        "$here/suite.sh" --vmm "$vmm" --kernel "$cache/kernel/vmlinuz" \
        --initrd "$cache/test-initramfs.cpio.gz" --work /run/vmdev-guest-test || rc=1
else
    "$here/suite.sh" --vmm "$vmm" --kernel "$cache/kernel/vmlinuz" \
        --initrd "$cache/test-initramfs.cpio.gz" --work "$cache/work" || rc=1
fi
if [ $run_interop = 1 ]; then
    nesting=()
    [ "$mode" = 1 ] && nesting=(--nested "$cache")
    retried "$here/interop.sh" --vmm "$vmm" --kernel "$cache/kernel/vmlinuz" \
        --initrd "$cache/test-initramfs.cpio.gz" --work "$cache/interop" \
        "${nesting[@]}" || rc=1
fi
echo "run.sh: guest tests $([ $rc -eq 0 ] && echo passed || echo FAILED)" \
    "($([ "$mode" = 1 ] && echo nested || echo direct) KVM," \
    "$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }') s)"
exit $rc
