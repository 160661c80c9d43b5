# randread (bench/blk.sh, not a test): 4 KiB random reads of the disk
# whose serial is randread_serial, O_DIRECT, randread_depth in flight on
# each of randread_jobs CPUs, for randread_seconds. Prints VMDEV-DATA
# randread.queues (the hardware queues the guest's driver made) and
# randread.iops.
. /tests/lib.sh
serial=$(vmdev_param randread_serial)
wait_for 5 disk_with_serial "$serial" > /dev/null || fail "no disk with serial $serial"
disk=$(disk_with_serial "$serial")
data randread.queues "$(ls -d /sys/block/"$disk"/mq/* | wc -l)"
iops=$(randread "/dev/$disk" "$(vmdev_param randread_seconds)" \
    "$(vmdev_param randread_depth)" "$(vmdev_param randread_jobs)") ||
    fail "randread on /dev/$disk failed"
data randread.iops "$iops"
