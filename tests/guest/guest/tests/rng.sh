# rng: virtio-rng is the current hwrng and /dev/hwrng delivers random bytes.
. /tests/lib.sh
cur=$(cat /sys/class/misc/hw_random/rng_current)
case "$cur" in virtio_rng*) ;; *) fail "rng_current is '$cur', want virtio_rng.N" ;; esac
n=$(head -c 4096 /dev/hwrng | wc -c)
[ "$n" = 4096 ] || fail "read $n bytes from /dev/hwrng, want 4096"
a=$(head -c 64 /dev/hwrng | sha256sum)
b=$(head -c 64 /dev/hwrng | sha256sum)
[ "$a" != "$b" ] || fail "two reads of /dev/hwrng returned the same 64 bytes"
zero=$(head -c 64 /dev/zero | sha256sum)
[ "$a" != "$zero" ] || fail "/dev/hwrng returned zeros"
