# hotplug: devices added and removed while the guest runs, through the
# control API (the host's side is tests/guest/hotplug.sh, which answers
# each VMDEV-HOTPLUG marker here). pciehp hears of a disk and a card in
# PCI Express root ports; the disk reads as its image and takes a write;
# the card gets its address by DHCP and downloads from the host. With a
# dd running on the disk and downloads on the card, the host removes
# both (the attention button): the drivers let go and the devices leave.
# Then add/remove cycles of a disk and a card while vda runs a dd, and a
# disk pulled out by surprise (force) under a dd, which the guest
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
# The host looks at the counters and pauses the VM first.
poll_us=200000 wait_for 180 gone "/sys/block/$disk" ||
    hp_fail "$disk is still there 180 s after the I/O started"
poll_us=200000 wait_for 30 gone "/sys/class/net/$iface" ||
    hp_fail "$iface is still there"
kill $dd_pid $wget_pid 2>/dev/null
wait
mark removed

# churn: hot_churn cycles of a disk and a card, each released by the
# guest itself once seen (its slot powered off through sysfs, as an
# operator would: no 5 s button wait), while a dd reads vda throughout.
# slot_of DEVICE_DIR: the pciehp slot directory of a PCI function.
slot_of() {
    address=$(basename "$(readlink -f "$1")")
    for s in /sys/bus/pci/slots/*; do
        [ "$(cat "$s/address")" = "${address%.*}" ] && { echo "$s"; return 0; }
    done
    return 1
}
(while dd if=/dev/vda of=/dev/null bs=64k count=256 iflag=direct 2>/dev/null; do :; done) &
dd_pid=$!
churn_mac=$(vmdev_param hot_churn_mac)
n=0
while [ $n -lt "$(vmdev_param hot_churn)" ]; do
    n=$((n + 1))
    poll_us=100000 wait_for 60 disk_with_serial churn > /dev/null ||
        hp_fail "cycle $n: no disk with serial churn appeared"
    disk=$(disk_with_serial churn)
    dd if="/dev/$disk" of=/dev/null bs=4096 count=1 iflag=direct 2>/dev/null ||
        hp_fail "cycle $n: $disk does not read"
    poll_us=100000 wait_for 60 has_mac "$churn_mac" ||
        hp_fail "cycle $n: no card with the MAC $churn_mac appeared"
    # Left down: a card up takes addresses (IPv6's link-local) whose
    # references its unregistering then waits out.
    iface=$(iface_with_mac "$churn_mac")
    disk_slot=$(slot_of "/sys/block/$disk/device/..") ||
        hp_fail "cycle $n: no slot for $disk"
    net_slot=$(slot_of "/sys/class/net/$iface/device/..") ||
        hp_fail "cycle $n: no slot for $iface"
    # Both at once: each waits for pciehp, which takes a second.
    echo 0 > "$disk_slot/power" &
    disk_off=$!
    echo 0 > "$net_slot/power" &
    wait $disk_off $!
    poll_us=100000 wait_for 30 gone "/sys/block/$disk" ||
        hp_fail "cycle $n: $disk is still there after its slot's power-off"
    poll_us=100000 wait_for 30 gone "/sys/class/net/$iface" ||
        hp_fail "cycle $n: $iface is still there after its slot's power-off"
done
kill $dd_pid 2>/dev/null
wait
mark churned

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
