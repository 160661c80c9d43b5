# boot: the CPU count the VMM was given and a 16550A on ttyS0.
. /tests/lib.sh
want=$(vmdev_param cpus) || want=1
n=$(grep -c '^processor' /proc/cpuinfo)
[ "$n" = "$want" ] || fail "/proc/cpuinfo lists $n CPUs, want $want"
online=$(cat /sys/devices/system/cpu/online)
if [ "$want" = 1 ]; then expect=0; else expect="0-$((want - 1))"; fi
[ "$online" = "$expect" ] || fail "cpu/online is '$online', want '$expect'"
[ "$(nproc)" = "$want" ] || fail "nproc says $(nproc), want $want"
line=$(grep '^0:' /proc/tty/driver/serial)
case "$line" in
    *uart:16550A*port:000003F8*irq:4*) ;;
    *) fail "ttyS0 is '$line', want a 16550A at 0x3f8 irq 4" ;;
esac
dmesg | grep -q 'ttyS0 at I/O 0x3f8 (irq = 4.*) is a 16550A' ||
    fail "dmesg lacks the 16550A probe line for ttyS0"
