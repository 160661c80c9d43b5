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
# It sits on our virtio-pci (modern) and interrupts through MSI-X.
found=""
for d in /sys/bus/virtio/devices/*; do
    [ "$(cat $d/device)" = 0x0004 ] && found=$d
done
[ -n "$found" ] || fail "no virtio device with id 4 (rng) on the virtio bus"
pdev=$(readlink -f "$found/..")
[ "$(cat $pdev/vendor):$(cat $pdev/device)" = "0x1af4:0x1044" ] ||
    fail "the rng's PCI function $pdev is not 1af4:1044"
[ "$(basename "$(readlink -f $pdev/driver)")" = virtio-pci ] ||
    fail "the rng's PCI function is not bound to virtio-pci"
grep -q "PCI-MSIX.*$(basename $found)-" /proc/interrupts ||
    grep -q "PCI-MSI.*$(basename $found)-" /proc/interrupts ||
    fail "no MSI-X interrupt for $(basename $found) in /proc/interrupts: $(grep virtio /proc/interrupts | tr -s ' ' | head -c 300)"
