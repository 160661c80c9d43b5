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

# readonly_disk_reads SERIAL PARAM: the disk with serial SERIAL is
# read-only to Linux, reads as the sha256 in vmdev.PARAM, and refuses a
# write.
readonly_disk_reads() {
    wait_for 5 disk_with_serial "$1" > /dev/null || fail "no disk with serial $1"
    d=$(disk_with_serial "$1")
    [ "$(cat /sys/block/$d/ro)" = 1 ] || fail "$d is not read-only (VIRTIO_BLK_F_RO not offered?)"
    want=$(vmdev_param "$2") || fail "no vmdev.$2"
    got=$(sha256sum < /dev/$d) ; got=${got%% *}
    [ "$got" = "$want" ] || fail "sha256 of $d is $got, want $want"
    if pattern 0 | dd of=/dev/$d bs=4096 conv=notrunc,fsync 2>/dev/null; then
        fail "a write to read-only $d succeeded"
    fi
}

# write_from_both_cpus DISK OFFSETS: pattern() at each offset of the
# colon-separated list, the writer alternating between CPU 0 and CPU 1 (a
# dd that fsyncs writes back from its own CPU, so through that CPU's
# queue); then each reads back so after dropping the caches.
write_from_both_cpus() {
    cpu=0
    for off in $(echo "$2" | tr : ' '); do
        pattern "$off" | taskset $((1 << cpu)) dd of=/dev/$1 bs=4096 seek="$off" \
            oflag=seek_bytes conv=notrunc,fsync 2>/tmp/dd.err ||
            fail "write at $off from CPU $cpu: $(cat /tmp/dd.err)"
        cpu=$(( (cpu + 1) % 2 ))
    done
    sync
    echo 3 > /proc/sys/vm/drop_caches
    for off in $(echo "$2" | tr : ' '); do
        a=$(dd if=/dev/$1 bs=4096 skip="$off" iflag=skip_bytes count=1 2>/dev/null | sha256sum)
        b=$(pattern "$off" | sha256sum)
        [ "$a" = "$b" ] || fail "read back at $off differs from what was written"
    done
}

# discard_reads_zero DISK OFFSET LENGTH: blkdiscard of the range succeeds
# and it reads back as zeroes.
discard_reads_zero() {
    blkdiscard -o "$2" -l "$3" /dev/$1 2>/tmp/discard.err ||
        fail "blkdiscard -o $2 -l $3: $(cat /tmp/discard.err)"
    echo 3 > /proc/sys/vm/drop_caches
    nonzero=$(dd if=/dev/$1 bs=65536 skip="$2" iflag=skip_bytes count=$(($3 / 65536)) 2>/dev/null |
        tr -d '\000' | wc -c)
    [ "$nonzero" = 0 ] || fail "the discarded range reads $nonzero non-zero bytes"
}

# negotiated DEV BIT:NAME...: fails unless the virtio device DEV (its
# /sys/bus/virtio/devices directory) negotiated every feature bit named.
negotiated() {
    # features: one character per bit, bit 0 first.
    f=$(cat "$1/features"); shift
    for b in "$@"; do
        [ "$(echo "$f" | cut -c$((${b%%:*} + 1)))" = 1 ] ||
            fail "feature ${b#*:} (bit ${b%%:*}) not negotiated: $f"
    done
}

# link_to IFACE ADDRESS/PREFIX PEER: lo and IFACE up, IFACE with the
# address and its carrier on, and PEER answering three pings; or fails.
link_to() {
    ip link set lo up
    ip link set "$1" up || fail "cannot bring $1 up"
    ip addr add "$2" dev "$1" || fail "cannot give $1 the address $2"
    wait_for 10 grep -qx 1 "/sys/class/net/$1/carrier" ||
        fail "$1 has no carrier (link status)"
    ping -c 3 -W 5 "$3" > /tmp/ping.out 2>&1 ||
        fail "ping $3: $(tail -n 2 /tmp/ping.out | tr '\n' ' ')"
}

# coalesce_interrupts IFACE: the driver asks the card (NOTF_COAL, as
# ethtool -C does) to hold its interrupts both ways up to vmdev.coalesce
# (USECS/FRAMES), and says it holds that; the host checks the card was
# told so.
coalesce_interrupts() {
    c=$(vmdev_param coalesce) || fail "no vmdev.coalesce"
    usecs=${c%/*} frames=${c#*/}
    got=$(coalesce "$1" "$usecs" "$frames" "$usecs" "$frames" 2>&1) ||
        fail "cannot set $1's interrupt coalescing: $got"
    [ "$got" = "rx $usecs $frames tx $usecs $frames" ] ||
        fail "$1's coalescing reads '$got' after setting $c both ways"
}

# The transfers run under $pin when set (taskset MASK: from those CPUs).

# download_matches URL PARAM [WHAT]: fetches URL (busybox wget) and fails
# unless its sha256 is vmdev.PARAM's, the server's file's; WHAT says
# which download in the reason.
download_matches() {
    sum=$($pin wget -q -O - "$1" 2>/tmp/wget.err | sha256sum | cut -d' ' -f1)
    [ "$sum" = "$(vmdev_param "$2")" ] ||
        fail "${3:-the download}: sha256 $sum, not the server's file's ($(cat /tmp/wget.err))"
}

# upload_random BYTES HOST PORT KEY: sends BYTES random bytes to HOST:PORT
# (busybox nc), having printed "KEY SHA256 BYTES" for the receiving side
# to compare with what arrived.
upload_random() {
    head -c "$1" /dev/urandom > /tmp/upload
    data "$4" "$(sha256sum < /tmp/upload | cut -d' ' -f1) $1"
    $pin nc "$2" "$3" < /tmp/upload 2>/tmp/nc.err ||
        fail "upload to $2:$3: $(cat /tmp/nc.err)"
    rm /tmp/upload
}

# seconds_since UPTIME: how long since /proc/uptime read UPTIME.
seconds_since() { awk -v a="$1" '{ print $1 - a }' /proc/uptime; }
uptime_now() { cut -d' ' -f1 /proc/uptime; }

# iface_with_mac MAC: the network interface with that address, or fails.
iface_with_mac() {
    for a in /sys/class/net/*/address; do
        [ "$(cat "$a")" = "$1" ] && { basename "$(dirname "$a")"; return 0; }
    done
    fail "no interface has the MAC $1"
}

# virtio_net_with_mac MAC: the virtio device (id 1, net) whose interface
# has that address, or fails.
virtio_net_with_mac() {
    for d in /sys/bus/virtio/devices/*; do
        [ "$(cat "$d/device")" = 0x0001 ] || continue
        for a in "$d"/net/*/address; do
            [ "$(cat "$a" 2>/dev/null)" = "$1" ] && { echo "$d"; return 0; }
        done
    done
    fail "no virtio net device (id 1) has an interface with MAC $1"
}

# dhcp_lease IFACE: configures IFACE by DHCP (busybox udhcpc: the address
# and a default route through the router), or fails; "ADDRESS ROUTER" of
# the lease is left in /tmp/dhcp-lease.
dhcp_lease() {
    # udhcpc runs a script at each DHCP event; it configures the interface.
    cat > /tmp/dhcp-event <<'EOF'
#!/bin/sh
case "$1" in
bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    [ -n "$router" ] && ip route add default via "${router%% *}" dev "$interface"
    echo "$ip ${router%% *}" > /tmp/dhcp-lease ;;
esac
exit 0
EOF
    chmod +x /tmp/dhcp-event
    udhcpc -i "$1" -s /tmp/dhcp-event -n -q -t 5 -T 2 > /tmp/udhcpc.out 2>&1 ||
        fail "udhcpc on $1 got no lease: $(tail -n 3 /tmp/udhcpc.out | tr '\n' ' ')"
}

# peer_ping ADDRESS SECONDS: waits up to SECONDS for ADDRESS (a VM booting
# alongside) to answer a ping, then pings it three times, or fails.
peer_ping() {
    # A deadline, not a count: each unanswered ping itself waits a second.
    end=$(( $(cut -d. -f1 /proc/uptime) + $2 ))
    until ping -c 1 -W 1 "$1" > /dev/null 2>&1; do
        [ "$(cut -d. -f1 /proc/uptime)" -lt $end ] ||
            fail "$1 never answered a ping in $2 s"
        usleep 200000
    done
    ping -c 3 -W 5 "$1" > /tmp/ping.out 2>&1 ||
        fail "ping $1: $(tail -n 2 /tmp/ping.out | tr '\n' ' ')"
}
