# blkro: a disk given with readonly=on is read-only to Linux and refuses writes.
. /tests/lib.sh
wait_for 5 test -b /dev/vdb || fail "no /dev/vdb"
[ "$(cat /sys/block/vdb/ro)" = 1 ] || fail "vdb is not read-only (VIRTIO_BLK_F_RO not offered?)"
want=$(vmdev_param blkro_sha256) || fail "no vmdev.blkro_sha256"
got=$(sha256sum < /dev/vdb) ; got=${got%% *}
[ "$got" = "$want" ] || fail "sha256 of vdb is $got, want $want"
if pattern 0 | dd of=/dev/vdb bs=4096 conv=notrunc,fsync 2>/dev/null; then
    fail "a write to read-only vdb succeeded"
fi
