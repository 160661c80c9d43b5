#!/bin/bash
# net-job.sh --vmm VMM --kernel FILE --initrd FILE --seconds S --work DIR
#            [--configs "vmdev-tap qemu-tap ..."] [--pcap]
#
# Runs where /dev/kvm works (inside bench/net.sh's nested guest): iperf3
# from a guest to this machine and back (bench/guest/iperf.sh), the same
# kernel and netbench initramfs under vmdev-run and QEMU with KVM, each on
# the same backend kind:
#   tap    a persistent tap with a virtio-net header on a bridge whose
#          other port is a veth into namespace vmdevbns, where iperf3
#          listens (10.0.4.2); vmdev-run --net tap=, QEMU -netdev tap
#          (vhost=off: vmdev-run has no vhost-net either);
#   slirp  vmdev-run --net slirp, QEMU -netdev user: both libslirp, iperf3
#          on this machine's loopback (the guest's 10.0.2.2);
#   passt  both on passt (vmdev-run --net socket=, QEMU -netdev stream),
#          iperf3 on the loopback (passt maps its gateway address there).
# Two vCPUs, 512 MiB, one queue pair, each VMM's default settings
# otherwise. One round: each configuration once, in turn; a line
# "CONFIG tx_mbits rx_mbits" for each that measured goes to DIR/results.
# --pcap: each VMM captures its card's frames into DIR/CONFIG.pcap
# (vmdev-run's pcap=, QEMU's filter-dump).
set -u
vmm="" kernel="" initrd="" seconds=5 work="" pcap=0
configs="vmdev-tap qemu-tap vmdev-slirp qemu-slirp vmdev-passt qemu-passt"
while [ $# -gt 0 ]; do
    case "$1" in
    --vmm) vmm="$2"; shift 2 ;;
    --kernel) kernel="$2"; shift 2 ;;
    --initrd) initrd="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    --configs) configs="$2"; shift 2 ;;
    --pcap) pcap=1; shift ;;
    *) echo "net-job: unknown option $1" >&2; exit 2 ;;
    esac
done
rm -rf "$work"
mkdir -p "$work"
mac=52:54:00:12:34:70
pids=()
passt_dir=""
# Everything set up here, gone before the next run sets it up again.
cleanup() {
    if [ ${#pids[@]} -gt 0 ]; then
        kill "${pids[@]}" 2>/dev/null
        wait "${pids[@]}" 2>/dev/null
    fi
    ip link del vmdevbveth0 2>/dev/null
    ip netns del vmdevbns 2>/dev/null
    ip link del vmdevbtap0 2>/dev/null
    ip link del vmdevbbr0 2>/dev/null
    ip link del vmdevbpt0 2>/dev/null
    [ -z "$passt_dir" ] || rm -rf "$passt_dir"
}
cleanup
trap cleanup EXIT
die() { echo "net-job: $*" >&2; exit 1; }

# tap: bridge, namespace, veth, and the tap both VMMs open in turn.
{ ip link set lo up &&
    ip netns add vmdevbns &&
    ip link add vmdevbbr0 type bridge && ip link set vmdevbbr0 up &&
    ip link add vmdevbveth0 type veth peer name vmdevbveth1 netns vmdevbns &&
    ip link set vmdevbveth0 master vmdevbbr0 && ip link set vmdevbveth0 up &&
    ip -n vmdevbns link set lo up &&
    ip -n vmdevbns addr add 10.0.4.2/24 dev vmdevbveth1 &&
    ip -n vmdevbns link set vmdevbveth1 up &&
    ip tuntap add dev vmdevbtap0 mode tap vnet_hdr &&
    ip link set vmdevbtap0 master vmdevbbr0 && ip link set vmdevbtap0 up; } ||
    die "cannot set up the bridge, namespace and tap"
ip netns exec vmdevbns iperf3 -s -B 10.0.4.2 > "$work/iperf-ns.log" 2>&1 &
pids+=($!)
iperf3 -s -B 127.0.0.1 > "$work/iperf-lo.log" 2>&1 &
pids+=($!)
# passt takes its addresses from the interface of the default route. The
# nested guest has none: give it one (a veth, its far end unused), the
# gateway an address nothing answers at, which passt maps to the loopback.
if [ -z "$(ip route show default)" ]; then
    { ip link add vmdevbpt0 type veth peer name vmdevbpt1 &&
        ip addr add 10.0.9.1/24 dev vmdevbpt0 && ip link set vmdevbpt0 up &&
        ip link set vmdevbpt1 up && ip route add default via 10.0.9.254 dev vmdevbpt0; } ||
        die "cannot give passt a default route"
fi
passt_dir=$(mktemp -d /run/vmdev-passt.XXXXXX)
chown nobody: "$passt_dir"
passt_sock=$passt_dir/passt.sock

append="console=ttyS0 quiet panic=-1 vmdev.test=iperf vmdev.test_timeout=$((seconds * 2 + 60))"
append="$append vmdev.iperf_mac=$mac vmdev.iperf_seconds=$seconds"
limit=$((seconds * 2 + 120))
qemu=(timeout -k 5 "$limit" qemu-system-x86_64 -enable-kvm -cpu host -smp 2 -m 512M -M q35
    -display none -nodefaults -no-reboot -serial stdio
    -kernel "$kernel" -initrd "$initrd")
vmdev=(timeout -k 5 "$limit" "$vmm" --kernel "$kernel" --initramfs "$initrd" --cpus 2 --memory 512M --stats
    --serial stdio)

# pcap_file CONFIG: where CONFIG's capture is written. In the nested guest
# DIR is a 9p share, where a write per frame would be the measurement:
# there on tmpfs, and one() moves it to DIR.
pcap_file() {
    if [ "$(findmnt -n -o FSTYPE -T "$work")" = 9p ]; then
        echo "/run/vmdev-bench-$1.pcap"
    else
        echo "$work/$1.pcap"
    fi
}

# launch CONFIG: execs the VMM of CONFIG (VMM-BACKEND), stopped if its
# guest has not finished in time.
launch() {
    local capture="" qemu_capture=()
    # QEMU's filter-dump writes the same format.
    if [ "$pcap" = 1 ]; then
        capture=",pcap=$(pcap_file "$1")"
        qemu_capture=(-object "filter-dump,id=dump0,netdev=n0,file=$(pcap_file "$1")")
    fi
    local tap_args="vmdev.iperf_addr=10.0.4.15/24 vmdev.iperf_server=10.0.4.2"
    local dhcp_args="vmdev.iperf_addr=dhcp"
    case "$1" in
    vmdev-tap) exec "${vmdev[@]}" --cmdline "$append $tap_args" \
                   --net "tap=vmdevbtap0,mac=$mac$capture" ;;
    qemu-tap) exec "${qemu[@]}" -append "$append $tap_args" \
                  -netdev tap,id=n0,ifname=vmdevbtap0,script=no,downscript=no,vhost=off \
                  -device "virtio-net-pci,netdev=n0,mac=$mac" "${qemu_capture[@]}" ;;
    vmdev-slirp) exec "${vmdev[@]}" --cmdline "$append $dhcp_args" \
                     --net "slirp,mac=$mac$capture" ;;
    # Not in the default list: the host's interrupt coalescing defaults,
    # which a driver with NOTF_COAL (Debian 12's 6.1 has it) replaces by
    # none at reset: measured before that was so (docs/benchmarks.md).
    vmdev-slirp-coalesced) exec "${vmdev[@]}" --cmdline "$append $dhcp_args" \
                     --net "slirp,mac=$mac,coalesce_usecs=300,coalesce_frames=64$capture" ;;
    # Not in the default list: slirp's link and the card at an MTU of
    # 65520 (QEMU's -netdev user has no such setting).
    vmdev-slirp-mtu65520) exec "${vmdev[@]}" --cmdline "$append $dhcp_args" \
                     --net "slirp,mac=$mac,mtu=65520$capture" ;;
    qemu-slirp) exec "${qemu[@]}" -append "$append $dhcp_args" \
                    -netdev user,id=n0 -device "virtio-net-pci,netdev=n0,mac=$mac" "${qemu_capture[@]}" ;;
    vmdev-passt) exec "${vmdev[@]}" --cmdline "$append $dhcp_args" \
                     --net "socket=$passt_sock,mac=$mac$capture" ;;
    qemu-passt) exec "${qemu[@]}" -append "$append $dhcp_args" \
                    -netdev "stream,id=n0,server=off,addr.type=unix,addr.path=$passt_sock" \
                    -device "virtio-net-pci,netdev=n0,mac=$mac" "${qemu_capture[@]}" ;;
    esac
}

# one CONFIG: prints "CONFIG tx_mbits rx_mbits", or fails.
one() {
    local log="$work/$1.log" passt_pid="" tx rx
    if [ "${1#*-}" = passt ]; then
        # IPv4 only: the nested guest's made-up route is IPv4 only.
        passt -f -e -1 -4 --runas nobody -s "$passt_sock" > "$work/passt.log" 2>&1 &
        passt_pid=$!
        if ! grep -q -m 1 "socket bound at" < <(timeout 20 tail -n +1 -f --pid=$passt_pid "$work/passt.log") ||
            [ ! -S "$passt_sock" ]; then
            kill "$passt_pid" 2>/dev/null
            die "passt did not start: $(grep -v syslog "$work/passt.log" | tail -n 3)"
        fi
    fi
    (launch "$1") < /dev/null > "$log" 2>&1
    local status=$?
    [ "$pcap" = 0 ] || [ "$(pcap_file "$1")" = "$work/$1.pcap" ] ||
        mv "$(pcap_file "$1")" "$work/$1.pcap" 2>/dev/null
    [ -z "$passt_pid" ] || { kill "$passt_pid" 2>/dev/null; wait "$passt_pid" 2>/dev/null; }
    tx=$(tr -d '\r' < "$log" | sed -n 's/^VMDEV-DATA iperf.tx //p' | head -n 1)
    rx=$(tr -d '\r' < "$log" | sed -n 's/^VMDEV-DATA iperf.rx //p' | head -n 1)
    if [ -z "$tx" ] || [ -z "$rx" ]; then
        echo "net-job: $1 measured nothing (the VMM's exit status $status); its output:" >&2
        tr -d '\r' < "$log" | grep -v "VMDEV-DATA modules" | tail -n 15 >&2
        return 1
    fi
    echo "$1 $tx $rx"
}

for c in $configs; do
    line=$(one "$c") || continue
    echo "measured: $line"
    echo "$line" >> "$work/results"
done
