# blk: /dev/vda holds exactly the host's image; writes at the host-chosen
# offsets reach the device (read back after dropping caches; the host checks
# the file after poweroff).
. /tests/lib.sh
wait_for 5 test -b /dev/vda || fail "no /dev/vda"
want=$(vmdev_param blk_sha256) || fail "no vmdev.blk_sha256"
size=$(cat /sys/block/vda/size)
[ "$size" = "$(vmdev_param blk_sectors)" ] || fail "vda has $size sectors, want $(vmdev_param blk_sectors)"
[ "$(cat /sys/block/vda/ro)" = 0 ] || fail "vda is read-only"
got=$(sha256sum < /dev/vda) ; got=${got%% *}
[ "$got" = "$want" ] || fail "sha256 of vda is $got, want $want"
for off in $(vmdev_param blk_writes | tr : ' '); do
    pattern "$off" | dd of=/dev/vda bs=4096 seek="$off" oflag=seek_bytes conv=notrunc,fsync 2>/tmp/dd.err ||
        fail "write at $off: $(cat /tmp/dd.err)"
done
sync
echo 3 > /proc/sys/vm/drop_caches
for off in $(vmdev_param blk_writes | tr : ' '); do
    a=$(dd if=/dev/vda bs=4096 skip="$off" iflag=skip_bytes count=1 2>/dev/null | sha256sum)
    b=$(pattern "$off" | sha256sum)
    [ "$a" = "$b" ] || fail "read back at $off differs from what was written"
done
