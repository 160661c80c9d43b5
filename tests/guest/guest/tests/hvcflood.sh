# hvcflood: writes to the virtio console without end, for the host's stop
# test (lifecycle.sh), which never reads what arrives.
. /tests/lib.sh
wait_for 5 test -c /dev/hvc0 || fail "no /dev/hvc0"
data hvcflood.started
yes vmdev-hvc-flood > /dev/hvc0
