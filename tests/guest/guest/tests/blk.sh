# blk: the disk (serial vmdev-data, num_queues=2) holds exactly the host's
# image, has a hardware queue per vCPU, shows the device's limits, keeps the
# guest's choice of write cache, and writes from both vCPUs at the
# host-chosen offsets reach it (read back after dropping caches; the host
# checks the file after poweroff, and that both queues served requests).
. /tests/lib.sh
wait_for 5 disk_with_serial vmdev-data > /dev/null || fail "no disk with serial vmdev-data"
d=$(disk_with_serial vmdev-data)
want=$(vmdev_param blk_sha256) || fail "no vmdev.blk_sha256"
size=$(cat /sys/block/$d/size)
[ "$size" = "$(vmdev_param blk_sectors)" ] || fail "$d has $size sectors, want $(vmdev_param blk_sectors)"
[ "$(cat /sys/block/$d/ro)" = 0 ] || fail "$d is read-only"
queues=$(ls /sys/block/$d/mq | wc -l)
[ "$queues" = 2 ] || fail "$d has $queues hardware queues, want 2 (num_queues=2)"
# size_max, seg_max, the 4 KiB physical block, write-zeroes; no discard
# without discard=on.
queue_attr_is $d max_segment_size 1048576
queue_attr_is $d max_segments 254
queue_attr_is $d logical_block_size 512
queue_attr_is $d physical_block_size 4096
queue_attr_is $d minimum_io_size 4096
queue_attr_is $d write_zeroes_max_bytes 1073741824
queue_attr_is $d discard_max_bytes 0
queue_attr_is $d write_cache "write back"
got=$(sha256sum < /dev/$d) ; got=${got%% *}
[ "$got" = "$want" ] || fail "sha256 of $d is $got, want $want"
# CONFIG_WCE: the driver writes the mode and reads it back from the device.
echo "write through" > /sys/block/$d/cache_type
queue_attr_is $d write_cache "write through"
write_from_both_cpus $d "$(vmdev_param blk_writes)"
echo "write back" > /sys/block/$d/cache_type
queue_attr_is $d write_cache "write back"
