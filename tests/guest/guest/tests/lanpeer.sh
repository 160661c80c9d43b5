# lanpeer: the other VM on the lan test's switch (not a test of its own;
# booted with vmdev.test=lanpeer): 10.0.5.2 with a web server whose file
# is `yes vmdev-lan` cut to lan_mib MiB, and a listener that takes the
# main guest's upload and prints its sha256 for the host to compare.
. /tests/lib.sh
iface=$(iface_with_mac "$(vmdev_param lan_peer_mac)") || exit 1
ip link set lo up
mkdir -p /tmp/www
yes vmdev-lan | head -c $(($(vmdev_param lan_mib) << 20)) > /tmp/www/blob
# Both servers listen before the address exists: once the main guest's
# ping is answered, they are there.
httpd -p 8084 -h /tmp/www || fail "httpd did not start"
nc -l -p 9003 > /tmp/up &
listener=$!
ip link set "$iface" up || fail "cannot bring $iface up"
ip addr add 10.0.5.2/24 dev "$iface" || fail "cannot give $iface an address"
# The upload ends the peer's part: nc returns when the sender closes.
wait $listener || fail "the upload listener failed"
data lanpeer.up_sha256 "$(sha256sum < /tmp/up | cut -d' ' -f1)"
