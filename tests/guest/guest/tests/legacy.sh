# legacy: the i8259 PICs and the i8254 PIT, as the guest's kernel and its
# port I/O see them.
. /tests/lib.sh

# Linux's probe_8259A writes the master's mask and reads it back; without
# a PIC it says "Using NULL legacy PIC" and treats every IRQ as non-ISA.
! dmesg | grep -q 'Using NULL legacy PIC' ||
    fail "Linux found no 8259 PIC (dmesg: Using NULL legacy PIC)"

[ -c /dev/port ] || fail "no /dev/port in the guest"
inb() {
    dd if=/dev/port bs=1 skip=$(($1)) count=1 2>/dev/null | od -An -tu1 |
        tr -d ' '
}
outb() {
    printf "\\$(printf %o $(($2)))" |
        dd of=/dev/port bs=1 seek=$(($1)) count=1 conv=notrunc 2>/dev/null
}

# After Linux's init_8259A with the IOAPIC in charge, the master is masked
# but for the cascade input (or entirely) and the slave entirely.
m=$(inb 0x21) s=$(inb 0xa1)
[ "$m" = 251 ] || [ "$m" = 255 ] || fail "master PIC mask is $m, want 0xfb or 0xff"
[ "$s" = 255 ] || fail "slave PIC mask is $s, want 0xff"
# OCW3 "read ISR" and back to IRR: nothing is in service.
outb 0x20 0x0b
[ "$(inb 0x20)" = 0 ] || fail "master PIC has interrupts in service"
outb 0x20 0x0a

# PIT counter 2, the way Linux's TSC calibration drives it: mode 0, count
# 0xffff, GATE through port 0x61 bit 0, OUT through bit 5. With GATE low
# the counter holds its count and OUT stays low; with GATE high it reaches
# terminal count within 55 ms and OUT goes high.
p61=$(inb 0x61)
outb 0x61 $(( p61 & ~3 ))
outb 0x43 0xb0
outb 0x42 0xff
outb 0x42 0xff
[ $(( $(inb 0x61) & 0x20 )) = 0 ] || fail "PIT OUT2 is high before terminal count"
latch2() {
    outb 0x43 0x80
    lo=$(inb 0x42)
    hi=$(inb 0x42)
    echo $(( hi * 256 + lo ))
}
c=$(latch2)
[ "$c" = 65535 ] || fail "PIT counter 2 reads $c with GATE low, want 65535"
# Status through the read-back command: OUT low, RW 3, mode 0, binary.
outb 0x43 0xe8
st=$(inb 0x42)
[ "$st" = 48 ] || fail "PIT counter 2 status is $st, want 0x30"
outb 0x61 $(( (p61 & ~2) | 1 ))
usleep 200000
[ $(( $(inb 0x61) & 0x20 )) = 32 ] || fail "PIT OUT2 stayed low 200 ms after GATE rose"
c=$(latch2)
[ "$c" != 65535 ] || fail "PIT counter 2 did not count with GATE high"
outb 0x61 $p61
