# lan: a vmdev-run VM on the interop test's switch (tests/guest/
# interop.sh) at 10.0.5.15, where a second vmdev-run VM (lanpeer.sh) sits
# at 10.0.5.2: ping it, download its file and upload as much to it, each
# checked by sha256 (the upload by the host, against what the peer
# printed); then stay until the peer has pinged back and said so.
. /tests/lib.sh
iface=$(iface_with_mac "$(vmdev_param lan_mac)") || exit 1
ip link set lo up
# A listening nc's connection ends with its input: hold that open.
mkfifo /tmp/hold
nc -l -p 9005 <> /tmp/hold > /tmp/from-peer &
from_peer=$!
ip link set "$iface" up || fail "cannot bring $iface up"
ip addr add 10.0.5.15/24 dev "$iface" || fail "cannot give $iface an address"
peer_ping 10.0.5.2 "$(vmdev_param lan_wait)"
start=$(uptime_now)
download_matches http://10.0.5.2:8084/blob lan_down_sha256
upload_random $(($(vmdev_param lan_mib) << 20)) 10.0.5.2 9003 lan.up
data lan.seconds "$(seconds_since "$start")"
wait $from_peer
[ "$(cat /tmp/from-peer)" = lanpeer-pinged ] ||
    fail "the peer's word on port 9005 was '$(cat /tmp/from-peer)', not lanpeer-pinged"
