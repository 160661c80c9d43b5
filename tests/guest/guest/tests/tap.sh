# tap: a card on a tap that vmdev-run made on a Linux bridge (--net
# tap=IFNAME,bridge=BR,queues=2); the bridge's other port leads into a
# network namespace at 10.0.4.2, where a web server has a file to download
# and a listener takes the upload, each checked by sha256. The card
# negotiates checksum and TCP segmentation offload both ways, which pass
# through the tap's virtio-net header to the host kernel, and two queue
# pairs.
. /tests/lib.sh
dev=$(virtio_net_with_mac "$(vmdev_param tap_mac)") || exit 1
negotiated "$dev" 0:CSUM 1:GUEST_CSUM 7:GUEST_TSO4 8:GUEST_TSO6 \
    11:HOST_TSO4 12:HOST_TSO6 15:MRG_RXBUF 22:MQ
iface=$(ls $dev/net | head -n 1)
coalesce_interrupts "$iface"
link_to "$iface" 10.0.4.15/24 10.0.4.2
start=$(uptime_now)
download_matches http://10.0.4.2:8082/blob tap_down_sha256
upload_random $(($(vmdev_param tap_mib) << 20)) 10.0.4.2 9002 tap.up
data tap.seconds "$(seconds_since "$start")"
