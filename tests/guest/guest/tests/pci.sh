# pci: Linux finds our host bridge through ACPI (\_SB.PCI0 in the DSDT)
# and reaches config space through ECAM (MCFG), reserved in the e820 map.
. /tests/lib.sh
pci_fail() {
    dmesg | grep -i -E 'pci|mmconfig|ecam|_prt|_osc' | head -n 40 >&2
    fail "$@"
}
dmesg | grep -q 'ACPI: PCI Root Bridge \[PCI0\] (domain 0000 \[bus 00\])' ||
    pci_fail "the kernel did not find the PCI root bridge \\_SB.PCI0"
dmesg | grep -q 'MMCONFIG for domain 0000 \[bus 00-00\] at \[mem 0xe0000000-0xe00fffff\]' ||
    pci_fail "no MMCONFIG (ECAM) for bus 0 at 0xe0000000"
dmesg | grep -q 'not reserved' &&
    pci_fail "the kernel says the ECAM region is not reserved"
d=/sys/bus/pci/devices/0000:00:00.0
[ -d $d ] || pci_fail "no PCI function 0000:00:00.0 (the host bridge)"
id="$(cat $d/vendor):$(cat $d/device) $(cat $d/class)"
[ "$id" = "0x1b36:0x0008 0x060000" ] ||
    pci_fail "00:00.0 is '$id', want the host bridge 0x1b36:0x0008 class 0x060000"
# _OSC hands control to the OS.
dmesg | grep -q 'acpi PNP0A08:00: _OSC: OS now controls' ||
    pci_fail "_OSC did not give the OS control"
# Every function as Linux enumerated it: slot, ids and BAR 0's start, for
# the host to compare with where vmdev-run's device manager placed each
# device (Linux keeps the BARs firmware assigned).
for d in /sys/bus/pci/devices/0000:00:*; do
    slot=${d##*/0000:00:}
    slot=${slot%.*}
    bar0=$(head -n 1 "$d/resource" | cut -d' ' -f1)
    data pci.function $((0x$slot)) "$(cat "$d/vendor"):$(cat "$d/device")" "$bar0"
done
