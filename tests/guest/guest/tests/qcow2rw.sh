# qcow2rw: a writable qcow2 disk (serial vmdev-qcow2rw, num_queues=2,
# discard=on) reads as the host's image, has a hardware queue per vCPU,
# takes writes from both vCPUs at host-chosen offsets and a blkdiscard that
# reads back as zeroes. After poweroff the host checks the image with
# qemu-img (clean, the expected bytes), that both queues served, and that
# the discard gave space back.
. /tests/lib.sh
wait_for 5 disk_with_serial vmdev-qcow2rw > /dev/null || fail "no disk with serial vmdev-qcow2rw"
d=$(disk_with_serial vmdev-qcow2rw)
queues=$(ls /sys/block/$d/mq | wc -l)
[ "$queues" = 2 ] || fail "$d has $queues hardware queues, want 2 (num_queues=2)"
want=$(vmdev_param qcow2rw_sha256) || fail "no vmdev.qcow2rw_sha256"
got=$(sha256sum < /dev/$d) ; got=${got%% *}
[ "$got" = "$want" ] || fail "sha256 of $d is $got, want $want"
write_from_both_cpus $d "$(vmdev_param qcow2rw_writes)"
discard_reads_zero $d "$(vmdev_param qcow2rw_discard_offset)" "$(vmdev_param qcow2rw_discard_length)"
