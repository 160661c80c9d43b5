# lanpeer: a vmdev-run VM on the interop test's switch (tests/guest/
# interop.sh) at 10.0.5.2, serving the other VMs: a web server with `yes
# vmdev-lan` cut to lan_mib MiB (blob, for the other vmdev-run VM at
# 10.0.5.15) and to 1 MiB (small, for the QEMU VM), and two listeners that
# take their uploads and print each one's sha256 for the host to compare
# with what the sender printed. Once the other vmdev-run VM's upload is in,
# it pings that VM and says so on its port 9005 (which that VM waits for).
. /tests/lib.sh
iface=$(iface_with_mac "$(vmdev_param lan_peer_mac)") || exit 1
ip link set lo up
mkdir -p /tmp/www
yes vmdev-lan | head -c $(($(vmdev_param lan_mib) << 20)) > /tmp/www/blob
yes vmdev-lan | head -c $((1 << 20)) > /tmp/www/small
# The servers listen before the address exists: once a client's ping is
# answered, they are there. A listening nc ends its connection when its
# own input ends: a FIFO held open keeps it going until the sender closes.
httpd -p 8084 -h /tmp/www || fail "httpd did not start"
mkfifo /tmp/hold
nc -l -p 9003 <> /tmp/hold > /tmp/up-vmdev &
from_vmdev=$!
nc -l -p 9004 <> /tmp/hold > /tmp/up-qemu &
from_qemu=$!
ip link set "$iface" up || fail "cannot bring $iface up"
ip addr add 10.0.5.2/24 dev "$iface" || fail "cannot give $iface an address"
wait $from_vmdev || fail "the listener for the vmdev-run VM's upload failed"
data lanpeer.vmdev_up "$(sha256sum < /tmp/up-vmdev | cut -d' ' -f1) $(wc -c < /tmp/up-vmdev)"
peer_ping 10.0.5.15 30
echo lanpeer-pinged | nc 10.0.5.15 9005 2>/tmp/nc.err || fail "cannot reach 10.0.5.15:9005: $(cat /tmp/nc.err)"
wait $from_qemu || fail "the listener for the QEMU VM's upload failed"
data lanpeer.qemu_up "$(sha256sum < /tmp/up-qemu | cut -d' ' -f1) $(wc -c < /tmp/up-qemu)"
