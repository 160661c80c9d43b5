# net: virtio-net through Linux's virtio_net, on a stream socket that leads
# to a tap on the host side (10.0.3.2): the card, its negotiated features
# and queues, then ping, a download and an upload whose bytes the two
# sides compare, sent from both vCPUs so at least two of its transmit
# queues carry them.
. /tests/lib.sh
# The card is the virtio device with id 1 (net) whose interface has its MAC.
dev=$(virtio_net_with_mac "$(vmdev_param net_mac)") || exit 1
features=$(cat $dev/features)
# features: one character per bit, bit 0 first.
for b in 0:CSUM 5:MAC 11:HOST_TSO4 12:HOST_TSO6 15:MRG_RXBUF 16:STATUS \
         17:CTRL_VQ 18:CTRL_RX 21:GUEST_ANNOUNCE 22:MQ 23:CTRL_MAC_ADDR; do
    [ "$(echo "$features" | cut -c$((${b%%:*} + 1)))" = 1 ] ||
        fail "feature ${b#*:} (bit ${b%%:*}) not negotiated: $features"
done
iface=$(ls $dev/net 2>/dev/null | head -n 1)
[ -n "$iface" ] || fail "virtio_net made no interface for $(basename $dev)"
mac=$(cat /sys/class/net/$iface/address)
[ "$mac" = "$(vmdev_param net_mac)" ] || fail "$iface has MAC $mac, want $(vmdev_param net_mac)"
# vmdev-run's queues= pairs: the driver uses one per vCPU at first, so it
# is asked for all of them (ethtool -L; the device hears VQ_PAIRS_SET).
want=$(vmdev_param net_queues)
ch=$(channels "$iface") || fail "channels $iface failed"
[ "${ch##* }" = "$want" ] || fail "$iface offers ${ch##* } queue pairs, want $want"
channels "$iface" "$want" > /tmp/channels.out 2>&1 ||
    fail "cannot set $want queue pairs: $(cat /tmp/channels.out)"
for dir in tx rx; do
    n=$(ls -d /sys/class/net/$iface/queues/$dir-* | wc -l)
    [ "$n" = "$(vmdev_param net_queues)" ] ||
        fail "$iface has $n $dir queues, want $(vmdev_param net_queues)"
done
ip link set lo up
ip link set "$iface" up || fail "cannot bring $iface up"
ip addr add 10.0.3.15/24 dev "$iface" || fail "cannot give $iface an address"
wait_for 10 grep -qx 1 /sys/class/net/$iface/carrier ||
    fail "$iface has no carrier (link status)"
ping -c 3 -W 5 10.0.3.2 > /tmp/ping.out 2>&1 ||
    fail "ping 10.0.3.2: $(tail -n 2 /tmp/ping.out | tr '\n' ' ')"
start=$(cut -d' ' -f1 /proc/uptime)
taskset 1 wget -q -O /tmp/down http://10.0.3.2:8080/blob 2>/tmp/wget.err ||
    fail "download: $(cat /tmp/wget.err)"
[ "$(sha256sum < /tmp/down | cut -d' ' -f1)" = "$(vmdev_param net_down_sha256)" ] ||
    fail "the download's sha256 differs from the host's file ($(wc -c < /tmp/down) bytes)"
head -c "$(wc -c < /tmp/down)" /dev/urandom > /tmp/up
data net.up_sha256 "$(sha256sum < /tmp/up | cut -d' ' -f1)"
taskset 2 nc 10.0.3.2 9000 < /tmp/up 2>/tmp/nc.err || fail "upload: $(cat /tmp/nc.err)"
data net.seconds "$(awk -v a="$start" '{ print $1 - a }' /proc/uptime)"
