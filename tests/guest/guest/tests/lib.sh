# Helpers for the in-guest tests (busybox sh).

# vmdev_param NAME: the value of vmdev.NAME=VALUE on the kernel command line.
vmdev_param() {
    for w in $(cat /proc/cmdline); do
        case "$w" in "vmdev.$1="*) echo "${w#*=}"; return 0 ;; esac
    done
    return 1
}

# fail REASON...: record why the test failed (init prints it) and stop.
fail() {
    echo "$*" > /tmp/reason
    echo "fail: $*" >&2
    exit 1
}

# data KEY VALUE: a line the host side parses (and timestamps on arrival).
data() { echo "VMDEV-DATA $*"; }

# wait_for SECONDS COMMAND...: poll COMMAND every poll_us microseconds
# (default 0.1 s) until it succeeds; fails when SECONDS pass first.
wait_for() {
    step=${poll_us:-100000}
    limit=$(( $1 * 1000000 / step )); shift
    i=0
    until "$@"; do
        i=$((i + 1))
        [ $i -ge $limit ] && return 1
        usleep "$step"
    done
}

# pattern OFFSET: the 4096 bytes the blk test writes at OFFSET (the host
# builds the same bytes the same way to check the image).
pattern() { yes "vmdev-$1" | head -c 4096; }

# disk_with_serial SERIAL: the name (vda, ...) of the virtio disk whose
# serial (--disk serial=) is SERIAL.
disk_with_serial() {
    for s in /sys/block/vd*/serial; do
        [ "$(cat "$s" 2>/dev/null)" = "$1" ] || continue
        s=${s%/serial}
        echo "${s##*/}"
        return 0
    done
    return 1
}

# queue_attr_is DISK ATTR VALUE: /sys/block/DISK/queue/ATTR holds VALUE.
queue_attr_is() {
    v=$(cat "/sys/block/$1/queue/$2")
    [ "$v" = "$3" ] || fail "$1: queue/$2 is '$v', want '$3'"
}
