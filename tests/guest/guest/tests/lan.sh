# lan: a card on a stream socket to vmdev-switch, where a second vmdev-run
# guest (guest/tests/lanpeer.sh) sits at 10.0.5.2: ping it, download its
# file and upload as much to it, each checked by sha256 (the upload by
# the host, against what the peer printed).
. /tests/lib.sh
iface=$(iface_with_mac "$(vmdev_param lan_mac)") || exit 1
ip link set lo up
ip link set "$iface" up || fail "cannot bring $iface up"
ip addr add 10.0.5.15/24 dev "$iface" || fail "cannot give $iface an address"
# The peer boots alongside: wait for it to answer (its servers listen
# before it has the address).
peer_up() { ping -c 1 -W 1 10.0.5.2 > /dev/null 2>&1; }
wait_for 60 peer_up || fail "the peer VM at 10.0.5.2 never answered a ping"
ping -c 3 -W 5 10.0.5.2 > /tmp/ping.out 2>&1 ||
    fail "ping 10.0.5.2: $(tail -n 2 /tmp/ping.out | tr '\n' ' ')"
start=$(cut -d' ' -f1 /proc/uptime)
got=$(wget -q -O - http://10.0.5.2:8084/blob 2>/tmp/wget.err | sha256sum | cut -d' ' -f1)
[ "$got" = "$(vmdev_param lan_down_sha256)" ] ||
    fail "the download's sha256 is $got, not the peer's file's ($(cat /tmp/wget.err))"
head -c $(($(vmdev_param lan_mib) << 20)) /dev/urandom > /tmp/lan-up
data lan.up_sha256 "$(sha256sum < /tmp/lan-up | cut -d' ' -f1)"
nc 10.0.5.2 9003 < /tmp/lan-up 2>/tmp/nc.err || fail "upload: $(cat /tmp/nc.err)"
rm /tmp/lan-up
data lan.seconds "$(awk -v a="$start" '{ print $1 - a }' /proc/uptime)"
