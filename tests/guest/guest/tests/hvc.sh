# hvc: text written to the virtio console reaches the host (which checks
# it), and the line the host feeds it (vmdev-run --console input=FILE)
# reads back from /dev/hvc0.
. /tests/lib.sh
wait_for 5 test -c /dev/hvc0 || fail "no /dev/hvc0"
token=$(vmdev_param hvc_token) || fail "no vmdev.hvc_token"
expect=$(vmdev_param hvc_input) || fail "no vmdev.hvc_input"
# Linux drops console input that arrives before the port is set up, and
# a tty's last close discards what it read: open hvc0 once, for both
# directions, then ask the host (on the serial console) for its line.
exec 3<>/dev/hvc0 || fail "cannot open /dev/hvc0"
echo "VMDEV-HVC $token" >&3 || fail "write to /dev/hvc0 failed"
data hvc.ready
read -t 20 -r line <&3 || fail "no line of host input on /dev/hvc0 in 20 s"
exec 3>&-
line=${line%$(printf '\r')}
[ "$line" = "VMDEV-HVC-IN $expect" ] ||
    fail "host input read back as '$line', want 'VMDEV-HVC-IN $expect'"
