# hvc: text written to the virtio console reaches the host (which checks it).
. /tests/lib.sh
wait_for 5 test -c /dev/hvc0 || fail "no /dev/hvc0"
token=$(vmdev_param hvc_token) || fail "no vmdev.hvc_token"
echo "VMDEV-HVC $token" > /dev/hvc0 || fail "write to /dev/hvc0 failed"
