# hotbench: the guest's side of bench/hotplug.sh, not a test. For each of
# vmdev.hot_runs rounds: wait (polling every 5 ms) for the disk with serial
# hb that the host is adding, say so (the host times device-add to this
# line), then release it by powering its slot off through sysfs and wait
# until it is gone, for the host's next round.
. /tests/lib.sh
slot_of() {
    address=$(basename "$(readlink -f "$1")")
    for s in /sys/bus/pci/slots/*; do
        [ "$(cat "$s/address")" = "${address%.*}" ] && { echo "$s"; return 0; }
    done
    return 1
}
gone() { [ ! -e "$1" ]; }
runs=$(vmdev_param hot_runs)
echo "VMDEV-HOTBENCH ready"
n=0
while [ $n -lt "$runs" ]; do
    n=$((n + 1))
    poll_us=5000 wait_for 120 disk_with_serial hb > /dev/null ||
        fail "round $n: no disk with serial hb"
    echo "VMDEV-HOTBENCH seen $n"
    disk=$(disk_with_serial hb)
    slot=$(slot_of "/sys/block/$disk/device/..") || fail "round $n: no slot for $disk"
    echo 0 > "$slot/power"
    poll_us=5000 wait_for 60 gone "/sys/block/$disk" ||
        fail "round $n: $disk is still there after its slot's power-off"
done
