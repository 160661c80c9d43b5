# hotplug: devices added and removed while the guest runs, through the
# control API (the host's side is tests/guest/hotplug.sh, which answers
# each VMDEV-HOTPLUG marker here). pciehp hears of a disk and a card in
# PCI Express root ports; the disk reads as its image and takes a write;
# the card gets its address by DHCP and downloads from the host. With a
# dd running on the disk and downloads on the card, the host removes
# both (the attention button): the drivers let go and the devices leave.
# Then a disk pulled out by surprise (force) under a dd, which the guest
# survives.
. /tests/lib.sh
mark() { echo "VMDEV-HOTPLUG $*"; }
# hp_fail REASON: fail, with what the kernel said about PCI and virtio.
hp_fail() {
    dmesg | grep -i -E 'pciehp|pcieport|pci 0000:0[1-9]|virtio|bridge window|eth' |
        tail -n 30 >&2
    ip addr >&2
    ip route >&2
    fail "$@"
}

mark ready
poll_us=200000 wait_for 60 disk_with_serial hotdisk > /dev/null ||
    hp_fail "no disk with serial hotdisk appeared"
disk=$(disk_with_serial hotdisk)
sum=$(sha256sum < "/dev/$disk" | cut -d' ' -f1)
[ "$sum" = "$(vmdev_param hot_sha256)" ] ||
    fail "$disk reads as sha256 $sum, not the image's"
# A write at 1 MiB, read back past the page cache.
pattern 1048576 > /tmp/pattern
dd if=/tmp/pattern of="/dev/$disk" bs=4096 seek=256 oflag=direct conv=fsync \
    2>/tmp/dd.err || fail "writing $disk: $(cat /tmp/dd.err)"
dd if="/dev/$disk" of=/tmp/back bs=4096 skip=256 count=1 iflag=direct 2>/dev/null
cmp -s /tmp/pattern /tmp/back || fail "$disk did not read back what was written"

mac=$(vmdev_param hot_mac)
has_mac() { for a in /sys/class/net/*/address; do [ "$(cat "$a")" = "$1" ] && return 0; done; return 1; }
poll_us=200000 wait_for 60 has_mac "$mac" || hp_fail "no card with the MAC $mac appeared"
iface=$(iface_with_mac "$mac")
ip link set lo up
ip link set "$iface" up || fail "cannot bring $iface up"
dhcp_lease "$iface"
ip route | grep -q '^default' ||
    hp_fail "no default route after DHCP on $iface: $(cat /tmp/dhcp-lease 2>&1) $(ip addr show dev "$iface" | tr '\n' ' ') $(ip route | tr '\n' ' ') $(tr '\n' ' ' < /tmp/udhcpc.out)"
port=$(vmdev_param hot_http_port)
sum=$(wget -q -O - "http://10.0.2.2:$port/blob" 2>/tmp/wget.err | sha256sum | cut -d' ' -f1)
[ "$sum" = "$(vmdev_param hot_blob_sha256)" ] ||
    hp_fail "the download: sha256 $sum, not the server's file's ($(cat /tmp/wget.err))"
data hotplug.iface "$iface $disk"

# I/O on both while the host removes them.
(while dd if=/dev/zero of="/dev/$disk" bs=64k seek=64 count=32 oflag=direct 2>/dev/null; do :; done) &
dd_pid=$!
(while wget -q -O /dev/null "http://10.0.2.2:$port/blob" 2>/dev/null; do :; done) &
wget_pid=$!
mark io-running
gone() { [ ! -e "$1" ]; }
poll_us=200000 wait_for 90 gone "/sys/block/$disk" ||
    hp_fail "$disk is still there 90 s after the I/O started"
poll_us=200000 wait_for 30 gone "/sys/class/net/$iface" ||
    hp_fail "$iface is still there"
kill $dd_pid $wget_pid 2>/dev/null
wait
mark removed

# Surprise removal under a dd.
poll_us=200000 wait_for 60 disk_with_serial surprise > /dev/null ||
    hp_fail "no disk with serial surprise appeared"
disk=$(disk_with_serial surprise)
(while dd if=/dev/zero of="/dev/$disk" bs=64k count=64 oflag=direct 2>/dev/null; do :; done) &
dd_pid=$!
mark surprise-io-running
poll_us=200000 wait_for 60 gone "/sys/block/$disk" ||
    hp_fail "$disk is still there after its surprise removal"
kill $dd_pid 2>/dev/null
wait
# The guest goes on: its other disk still reads.
dd if=/dev/vda of=/dev/null bs=64k count=16 iflag=direct 2>/dev/null ||
    fail "/dev/vda no longer reads after the surprise removal"
mark surprise-removed
