# net: virtio-net through Linux's virtio_net, on a stream socket that leads
# to a tap on the host side (10.0.3.2): the card, its negotiated features
# and queues, then ping, a download and an upload whose bytes the two
# sides compare, sent from both vCPUs so at least two of its transmit
# queues carry them.
. /tests/lib.sh
# The card is the virtio device with id 1 (net) whose interface has its MAC.
dev=$(virtio_net_with_mac "$(vmdev_param net_mac)") || exit 1
negotiated "$dev" 0:CSUM 5:MAC 11:HOST_TSO4 12:HOST_TSO6 15:MRG_RXBUF \
    16:STATUS 17:CTRL_VQ 18:CTRL_RX 21:GUEST_ANNOUNCE 22:MQ 23:CTRL_MAC_ADDR
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
coalesce_interrupts "$iface"
link_to "$iface" 10.0.3.15/24 10.0.3.2
start=$(uptime_now)
# The download's ACKs from CPU 0, the upload from CPU 1.
pin="taskset 1" download_matches http://10.0.3.2:8080/blob net_down_sha256
pin="taskset 2" upload_random $(($(vmdev_param net_mib) << 20)) 10.0.3.2 9000 net.up
data net.seconds "$(seconds_since "$start")"
