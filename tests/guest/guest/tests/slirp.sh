# slirp: a card on user-mode networking (--net slirp). Its address comes by
# DHCP (busybox udhcpc); through the NAT, 10.0.2.2 is the host's loopback,
# where a web server has a file to download and a listener takes an
# upload, each checked by sha256, at the card's MTU (slirp_mtu, which
# slirp's own link has too: 64 KiB frames to the NAT); a host port
# forwarded to this guest reaches a listener here; then at an MTU of 1500
# (what the guest's TCP tells slirp) another download, over IPv4 and over
# IPv6 to the host's loopback (fec0::2), from the address SLAAC made from
# the router's advertisement.
. /tests/lib.sh
iface=$(iface_with_mac "$(vmdev_param slirp_mac)") || exit 1
mtu=$(cat "/sys/class/net/$iface/mtu")
[ "$mtu" = "$(vmdev_param slirp_mtu)" ] ||
    fail "$iface has the MTU $mtu, not the card's $(vmdev_param slirp_mtu)"
coalesce_interrupts "$iface"
ip link set lo up
ip link set "$iface" up || fail "cannot bring $iface up"

dhcp_lease "$iface"
read -r lease_ip lease_router < /tmp/dhcp-lease
[ "$lease_ip" = 10.0.2.15 ] || fail "DHCP gave $lease_ip, want 10.0.2.15"
[ "$lease_router" = 10.0.2.2 ] || fail "DHCP gave the router $lease_router, want 10.0.2.2"
ip addr show dev "$iface" | grep -q "inet 10.0.2.15/24" ||
    fail "$iface does not have 10.0.2.15/24: $(ip addr show dev "$iface" | tr '\n' ' ')"

port=$(vmdev_param slirp_http_port)
start=$(uptime_now)
stats=/sys/class/net/$iface/statistics
bytes0=$(cat $stats/rx_bytes) frames0=$(cat $stats/rx_packets)
download_matches "http://10.0.2.2:$port/blob" slirp_down_sha256
# slirp's TCP cut the download to its link's MTU, the card's: frames far
# larger than 1514 bytes on average (at 1500 they would be at most that).
frame=$((($(cat $stats/rx_bytes) - bytes0) / ($(cat $stats/rx_packets) - frames0)))
[ "$frame" -gt 4000 ] ||
    fail "the download came in frames of $frame bytes on average: slirp's link is not at the MTU $mtu"
data slirp.rx_frame_bytes "$frame"
upload_random $(($(vmdev_param slirp_mib) << 20)) 10.0.2.2 \
    "$(vmdev_param slirp_upload_port)" slirp.up
data slirp.seconds "$(seconds_since "$start")"

# The host connects to its forwarded port once it reads fwd_ready, and
# sends the token.
guest_port=$(vmdev_param slirp_guest_port)
nc -l -p "$guest_port" > /tmp/fwd &
listener=$!
# Announce only once nc listens (state 0A in /proc/net/tcp, or tcp6 for
# [::]): a connection forwarded before would be refused.
listening() {
    cat /proc/net/tcp /proc/net/tcp6 2>/dev/null |
        grep -qi "^ *[0-9]*: [0-9A-F]*:$(printf %04X "$guest_port") [0-9A-F:]* 0A"
}
wait_for 10 listening || fail "nc is not listening on port $guest_port"
data slirp.fwd_ready 1
got_token() { grep -qx "$(vmdev_param slirp_fwd_token)" /tmp/fwd; }
wait_for 20 got_token ||
    fail "the host's connection to the forwarded port brought '$(cat /tmp/fwd)', not the token"
kill $listener 2>/dev/null

ip link set "$iface" mtu 1500 || fail "cannot set $iface's MTU to 1500"
download_matches "http://10.0.2.2:$port/small" slirp_small_sha256 \
    "the download at an MTU of 1500"
has_v6() { ip -6 addr show dev "$iface" | grep -q "inet6 fec0::"; }
wait_for 20 has_v6 ||
    fail "no fec0:: address by SLAAC: $(ip -6 addr show dev "$iface" | tr '\n' ' ')"
download_matches "http://[fec0::2]:$port/small" slirp_small_sha256 \
    "the download over IPv6"
