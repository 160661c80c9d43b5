# pci: Linux finds our host bridge through ACPI (\_SB.PCI0 in the DSDT)
# and reaches config space through ECAM (MCFG), reserved in the e820 map,
# for every bus; the devices sit behind PCI Express root ports, which
# pciehp drives once _OSC hands it native hot-plug.
. /tests/lib.sh
pci_fail() {
    dmesg | grep -i -E 'pci|mmconfig|ecam|_prt|_osc' | head -n 40 >&2
    fail "$@"
}
dmesg | grep -q 'ACPI: PCI Root Bridge \[PCI0\] (domain 0000 \[bus 00-ff\])' ||
    pci_fail "the kernel did not find the PCI root bridge \\_SB.PCI0 for buses 00-ff"
dmesg | grep -q 'MMCONFIG for domain 0000 \[bus 00-ff\] at \[mem 0xe0000000-0xefffffff\]' ||
    pci_fail "no MMCONFIG (ECAM) for buses 00-ff at 0xe0000000"
dmesg | grep -q 'not reserved' &&
    pci_fail "the kernel says the ECAM region is not reserved"
d=/sys/bus/pci/devices/0000:00:00.0
[ -d $d ] || pci_fail "no PCI function 0000:00:00.0 (the host bridge)"
id="$(cat $d/vendor):$(cat $d/device) $(cat $d/class)"
[ "$id" = "0x1b36:0x0008 0x060000" ] ||
    pci_fail "00:00.0 is '$id', want the host bridge 0x1b36:0x0008 class 0x060000"
# _OSC hands control to the OS, native PCI Express hot-plug included.
dmesg | grep -q 'acpi PNP0A08:00: _OSC: OS now controls \[PCIeHotplug' ||
    pci_fail "_OSC did not give the OS control of PCI Express hot-plug"
# The first root port: its ids, the port driver bound, pciehp's slot.
d=/sys/bus/pci/devices/0000:00:01.0
id="$(cat $d/vendor):$(cat $d/device) $(cat $d/class)"
[ "$id" = "0x1b36:0x000c 0x060400" ] ||
    pci_fail "00:01.0 is '$id', want a root port 0x1b36:0x000c class 0x060400"
[ "$(basename "$(readlink $d/driver)")" = pcieport ] ||
    pci_fail "00:01.0 has no pcieport driver"
[ -d /sys/bus/pci/slots/0 ] ||
    pci_fail "pciehp registered no slot 0 (/sys/bus/pci/slots: $(ls /sys/bus/pci/slots))"
dmesg | grep -q 'pciehp.*Slot #0 AttnBtn+ PwrCtrl+ MRL- AttnInd+ PwrInd+ HotPlug+' ||
    pci_fail "pciehp did not describe slot 0 as an attention-button slot"
# Every function as Linux enumerated it: its address, ids and BAR 0's
# start, for the host to compare with where vmdev-run's device manager
# placed each device (Linux keeps the BARs firmware assigned).
for d in /sys/bus/pci/devices/*; do
    address=${d##*/0000:}
    bar0=$(head -n 1 "$d/resource" | cut -d' ' -f1)
    data pci.function "$address" "$(cat "$d/vendor"):$(cat "$d/device")" "$bar0"
done
