# rtc: the CMOS RTC keeps the host's time and its alarm interrupt arrives.
. /tests/lib.sh
[ -c /dev/rtc0 ] || fail "no /dev/rtc0"
name=$(cat /sys/class/rtc/rtc0/name)
case "$name" in rtc_cmos*) ;; *) fail "rtc0 is '$name', not rtc_cmos" ;; esac

# since_epoch reads the clock through the driver (RTC_RD_TIME path). The host
# timestamps this line on arrival and compares.
# Print the moment the seconds tick over, so the reading is not up to a
# second stale (the RTC counts whole seconds).
first=$(cat /sys/class/rtc/rtc0/since_epoch)
ticked() { now=$(cat /sys/class/rtc/rtc0/since_epoch); [ "$now" != "$first" ]; }
# shellcheck disable=SC2034 # read by wait_for (lib.sh)
poll_us=1000
wait_for 3 ticked || fail "the RTC stood still at $first for 3 s"
unset poll_us
data rtc.epoch "$now"
# hwclock reads the same clock through the character device.
hw=$(hwclock -r -u) || fail "hwclock -r -u failed"
# "Fri Dec  4 16:54:40 2026  0.000000 seconds": split on blanks, as the day
# of the month is padded with a second one below 10.
# shellcheck disable=SC2086 # the splitting is the point
set -- $hw
hw_epoch=$(date -u -D '%b %d %H:%M:%S %Y' -d "$2 $3 $4 $5" +%s) ||
    fail "cannot parse hwclock output '$hw'"
d=$((hw_epoch - now))
[ $d -ge 0 ] && [ $d -le 2 ] || fail "hwclock says $hw_epoch, since_epoch said $now"

# Alarm 2 s ahead: the interrupt must arrive (irq count of rtc0 grows and the
# core clears the alarm) not before the RTC reaches the alarm time.
irqs() { awk '/ rtc0$/ { s = 0; for (i = 2; i <= NF; i++) if ($i ~ /^[0-9]+$/) s += $i; print s }' /proc/interrupts; }
before=$(irqs)
[ -n "$before" ] || fail "rtc0 is not in /proc/interrupts"
echo 0 > /sys/class/rtc/rtc0/wakealarm
start=$(cat /sys/class/rtc/rtc0/since_epoch)
echo $((start + 2)) > /sys/class/rtc/rtc0/wakealarm || fail "cannot set wakealarm"
[ "$(cat /sys/class/rtc/rtc0/wakealarm)" = $((start + 2)) ] ||
    fail "wakealarm reads '$(cat /sys/class/rtc/rtc0/wakealarm)', want $((start + 2))"
grep -q 'alarm_IRQ.*yes' /proc/driver/rtc || fail "alarm_IRQ not enabled after arming"
fired() { [ "$(irqs)" -gt "$before" ] && [ -z "$(cat /sys/class/rtc/rtc0/wakealarm)" ]; }
wait_for 6 fired || fail "no rtc0 interrupt within 6 s of arming an alarm 2 s ahead (irqs $before -> $(irqs))"
at=$(cat /sys/class/rtc/rtc0/since_epoch)
[ $at -ge $((start + 2)) ] || fail "alarm fired at $at, before its time $((start + 2))"
data rtc.alarm "armed=$start fired=$at irqs=$before->$(irqs)"
