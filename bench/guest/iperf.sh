# iperf (bench/net.sh, not a test): iperf3 from this guest to a server and
# back (-R), iperf_seconds each, over the card with MAC iperf_mac. Its
# address is iperf_addr (ADDRESS/PREFIX, the server at iperf_server) or
# "dhcp" (slirp and passt: the server is the router, which is the host's
# loopback). Prints VMDEV-DATA iperf.tx and iperf.rx in Mbit/s, as the
# receiving end counted them.
. /tests/lib.sh
iface=$(iface_with_mac "$(vmdev_param iperf_mac)") || exit 1
ip link set lo up
ip link set "$iface" up || fail "cannot bring $iface up"
addr=$(vmdev_param iperf_addr)
if [ "$addr" = dhcp ]; then
    dhcp_lease "$iface"
    read -r _ server < /tmp/dhcp-lease
else
    ip addr add "$addr" dev "$iface" || fail "cannot give $iface $addr"
    server=$(vmdev_param iperf_server)
    peer_ping "$server" 10
fi
secs=$(vmdev_param iperf_seconds)
# receiver_mbits: the receiving end's total from iperf3 -f m's summary.
receiver_mbits() {
    awk '/receiver$/ { for (i = 1; i < NF; i++) if ($(i + 1) == "Mbits/sec") print $i }'
}
iperf3 -c "$server" -t "$secs" -f m > /tmp/tx.out 2>&1 ||
    fail "iperf3 to $server: $(tail -n 2 /tmp/tx.out | tr '\n' ' ')"
data iperf.tx "$(receiver_mbits < /tmp/tx.out)"
iperf3 -c "$server" -t "$secs" -f m -R > /tmp/rx.out 2>&1 ||
    fail "iperf3 -R from $server: $(tail -n 2 /tmp/rx.out | tr '\n' ' ')"
data iperf.rx "$(receiver_mbits < /tmp/rx.out)"
