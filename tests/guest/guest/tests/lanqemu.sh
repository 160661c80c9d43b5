# lanqemu: a QEMU VM (TCG, -netdev stream) on the interop test's switch
# (tests/guest/interop.sh) at 10.0.5.3: ping the vmdev-run VM at 10.0.5.2
# (lanpeer.sh), download its small file and upload 1 MiB to it, each
# checked by sha256 (the upload by the host, against what the peer
# printed).
. /tests/lib.sh
iface=$(iface_with_mac "$(vmdev_param lan_qemu_mac)") || exit 1
ip link set lo up
ip link set "$iface" up || fail "cannot bring $iface up"
ip addr add 10.0.5.3/24 dev "$iface" || fail "cannot give $iface an address"
peer_ping 10.0.5.2 "$(vmdev_param lan_wait)"
download_matches http://10.0.5.2:8084/small lan_small_sha256
upload_random $((1 << 20)) 10.0.5.2 9004 lanqemu.up
