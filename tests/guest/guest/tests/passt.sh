# passt: a card whose stream socket leads to passt on the host (tests/
# guest/interop.sh). passt's DHCP gives the host's own address and its
# router; connections to the router's address reach the host's loopback,
# where a web server has a file to download, checked by sha256.
. /tests/lib.sh
iface=$(iface_with_mac "$(vmdev_param passt_mac)") || exit 1
ip link set lo up
ip link set "$iface" up || fail "cannot bring $iface up"
dhcp_lease "$iface"
read -r lease_ip lease_router < /tmp/dhcp-lease
data passt.lease "$lease_ip $lease_router"
[ -n "$lease_router" ] || fail "passt's DHCP lease ($lease_ip) named no router"
download_matches "http://$lease_router:$(vmdev_param passt_http_port)/blob" passt_down_sha256
