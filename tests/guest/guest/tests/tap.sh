# tap: a card on a tap that vmdev-run made on a Linux bridge (--net
# tap=IFNAME,bridge=BR,queues=2); the bridge's other port leads into a
# network namespace at 10.0.4.2, where a web server has a file to download
# and a listener takes the upload, each checked by sha256. The card
# negotiates checksum and TCP segmentation offload both ways, which pass
# through the tap's virtio-net header to the host kernel, and two queue
# pairs.
. /tests/lib.sh
dev=$(virtio_net_with_mac "$(vmdev_param tap_mac)") || exit 1
features=$(cat $dev/features)
# features: one character per bit, bit 0 first.
for b in 0:CSUM 1:GUEST_CSUM 7:GUEST_TSO4 8:GUEST_TSO6 11:HOST_TSO4 \
         12:HOST_TSO6 15:MRG_RXBUF 22:MQ; do
    [ "$(echo "$features" | cut -c$((${b%%:*} + 1)))" = 1 ] ||
        fail "feature ${b#*:} (bit ${b%%:*}) not negotiated: $features"
done
iface=$(ls $dev/net | head -n 1)
ip link set lo up
ip link set "$iface" up || fail "cannot bring $iface up"
ip addr add 10.0.4.15/24 dev "$iface" || fail "cannot give $iface an address"
wait_for 10 grep -qx 1 /sys/class/net/$iface/carrier ||
    fail "$iface has no carrier (link status)"
ping -c 3 -W 5 10.0.4.2 > /tmp/ping.out 2>&1 ||
    fail "ping 10.0.4.2: $(tail -n 2 /tmp/ping.out | tr '\n' ' ')"
start=$(cut -d' ' -f1 /proc/uptime)
sum=$(wget -q -O - http://10.0.4.2:8082/blob 2>/tmp/wget.err | sha256sum | cut -d' ' -f1)
[ "$sum" = "$(vmdev_param tap_down_sha256)" ] ||
    fail "the download's sha256 is $sum, not the host file's ($(cat /tmp/wget.err))"
head -c $(($(vmdev_param tap_mib) << 20)) /dev/urandom > /tmp/tap-up
data tap.up_sha256 "$(sha256sum < /tmp/tap-up | cut -d' ' -f1)"
nc 10.0.4.2 9002 < /tmp/tap-up 2>/tmp/nc.err || fail "upload: $(cat /tmp/nc.err)"
rm /tmp/tap-up
data tap.seconds "$(awk -v a="$start" '{ print $1 - a }' /proc/uptime)"
