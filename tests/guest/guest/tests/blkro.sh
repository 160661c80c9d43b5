# blkro: a disk given with readonly=on is read-only to Linux and refuses writes.
. /tests/lib.sh
wait_for 5 disk_with_serial vmdev-ro > /dev/null || fail "no disk with serial vmdev-ro"
d=$(disk_with_serial vmdev-ro)
[ "$(cat /sys/block/$d/ro)" = 1 ] || fail "$d is not read-only (VIRTIO_BLK_F_RO not offered?)"
want=$(vmdev_param blkro_sha256) || fail "no vmdev.blkro_sha256"
got=$(sha256sum < /dev/$d) ; got=${got%% *}
[ "$got" = "$want" ] || fail "sha256 of $d is $got, want $want"
if pattern 0 | dd of=/dev/$d bs=4096 conv=notrunc,fsync 2>/dev/null; then
    fail "a write to read-only $d succeeded"
fi
