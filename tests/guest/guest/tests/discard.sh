# discard: on a disk with discard=on (serial vmdev-discard), blkdiscard of a
# host-chosen range succeeds and the range reads back as zeroes; the host
# checks after poweroff that the image released the space and that nothing
# else changed.
. /tests/lib.sh
wait_for 5 disk_with_serial vmdev-discard > /dev/null || fail "no disk with serial vmdev-discard"
d=$(disk_with_serial vmdev-discard)
queue_attr_is $d discard_granularity 4096
queue_attr_is $d discard_max_bytes 1073741824
off=$(vmdev_param discard_offset) || fail "no vmdev.discard_offset"
len=$(vmdev_param discard_length) || fail "no vmdev.discard_length"
discard_reads_zero $d "$off" "$len"
