#!/bin/bash
# interop.sh --vmm VMM --switch VMDEV_SWITCH --kernel FILE --initrd FILE
#            --work DIR [--nested CACHE]
#
# The network tests that take several VMs, all on one vmdev-switch here:
#   lan      vmdev-run VM "a" (guest/tests/lan.sh) and vmdev-run VM "b"
#            (lanpeer.sh) ping each other and exchange lan_mib MiB each way;
#   lanqemu  a QEMU VM (TCG, -netdev stream; lanqemu.sh) reaches "b" and
#            exchanges 1 MiB each way with it;
#   passt    "a"'s second card is a stream socket to passt here, through
#            which it gets a DHCP lease and reaches a web server on this
#            machine's loopback;
#   pcap     that card's frames, captured by vmdev-run (pcap=), hold the
#            DHCP exchange both ways and the whole download (tcpdump -r).
# Uploads are checked by sha256 on both sides (the sender's and the
# receiver's, as each printed it), downloads by the guest.
#
# With --nested CACHE (this machine's /dev/kvm cannot run guests), each
# vmdev-run VM runs in an outer QEMU guest of its own (nested.sh: two VMs in
# one outer guest broke its kernel), its --net socket= leading through a
# virtio-serial port (port-relay.c) to the switch or passt here. The
# switch, passt and the QEMU VM run here either way.
#
# Prints one PASS/FAIL line per test; exit status 0 when all pass; 3 when,
# under nesting, a vmdev-run VM stopped on its own before finishing (its
# guest's kernel died, it hung, its outer guest froze) having failed no
# test itself: the nested KVM's faults, which run.sh retries (see
# docs/architecture.md), whatever the other VMs then failed waiting for
# it; 1 otherwise.
set -u

vmm="" switch_bin="" kernel="" initrd="" work="" nested=""
while [ $# -gt 0 ]; do
    case "$1" in
    --vmm) vmm="$2"; shift 2 ;;
    --switch) switch_bin="$2"; shift 2 ;;
    --kernel) kernel="$2"; shift 2 ;;
    --initrd) initrd="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    --nested) nested="$2"; shift 2 ;;
    *) echo "interop: unknown option $1" >&2; exit 2 ;;
    esac
done
[ -n "$vmm" ] && [ -n "$switch_bin" ] && [ -n "$kernel" ] && [ -n "$initrd" ] && [ -n "$work" ] ||
    { echo "usage: $0 --vmm VMM --switch VMDEV_SWITCH --kernel FILE --initrd FILE --work DIR [--nested CACHE]" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
# Seconds each VM may take, boot to poweroff (the nested ones boot their
# outer guest first, at the same time as each other).
limit=${VMDEV_INTEROP_TIMEOUT:-200}
lan_mib=${VMDEV_LAN_MIB:-20}
a_mac=52:54:00:12:34:59 b_mac=52:54:00:12:34:5a qemu_mac=52:54:00:12:34:5b
passt_mac=52:54:00:12:34:5c passt_http_port=8085

failures=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; failures=$((failures + 1)); }

rm -rf "$work"
mkdir -p "$work"
work=$(cd "$work" && pwd)
servers=()
trap '[ ${#servers[@]} -eq 0 ] || kill "${servers[@]}" 2>/dev/null' EXIT

# start_server NAME PATTERN COMMAND...: runs COMMAND in the background, its
# output in $work/NAME.log, and waits (20 s at most) for a line of it that
# contains PATTERN, which it prints when it is ready to serve.
start_server() {
    local name=$1 pattern=$2
    shift 2
    "$@" > "$work/$name.log" 2>&1 &
    servers+=($!)
    grep -q -m 1 -F "$pattern" < <(timeout 20 tail -n +1 -f --pid=$! "$work/$name.log")
}

# The switch, and passt with a web server on the loopback behind it.
setup=""
start_server switch "listening on" "$switch_bin" --listen "$work/lan.sock" --stats ||
    setup="vmdev-switch did not start: $(tail -n 3 "$work/switch.log")"
switch_pid=${servers[-1]}
passt_setup=""
mkdir -p "$work/passt-www"
head -c 4M /dev/urandom > "$work/passt-www/blob"
# passt drops root for nobody before it makes its socket: a directory of
# nobody's, in /tmp, which nobody can reach whatever the checkout's path.
passt_dir=$(mktemp -d /tmp/vmdev-passt.XXXXXX)
passt_sock=$passt_dir/passt.sock
trap '[ ${#servers[@]} -eq 0 ] || kill "${servers[@]}" 2>/dev/null; rm -rf "$passt_dir"' EXIT
if ! command -v passt > /dev/null; then
    passt_setup="no passt (apt-get install passt)"
elif ! chown nobody: "$passt_dir"; then
    passt_setup="cannot give $passt_dir to nobody, for passt"
# -f: in the foreground (ours to stop); -1: one guest, then exit.
elif ! start_server passt "socket bound at" passt -f -e -1 --runas nobody -s "$passt_sock" ||
    [ ! -S "$passt_sock" ]; then
    passt_setup="passt did not start: $(grep -v syslog "$work/passt.log" | tail -n 3)"
else
    # The guest connects long after this listens (not checked: a port in
    # use shows as the guest's failed download).
    busybox httpd -f -p "127.0.0.1:$passt_http_port" -h "$work/passt-www" &
    servers+=($!)
fi

# Read by every guest; each runs the tests its vmdev.test= names.
lan_wait=$((limit - 90))
cmdline="console=ttyS0 quiet panic=-1 vmdev.test_timeout=$((limit - 60))"
cmdline="$cmdline vmdev.lan_wait=$lan_wait vmdev.lan_mib=$lan_mib"
cmdline="$cmdline vmdev.lan_mac=$a_mac vmdev.lan_peer_mac=$b_mac vmdev.lan_qemu_mac=$qemu_mac"
cmdline="$cmdline vmdev.lan_down_sha256=$(yes vmdev-lan | head -c "${lan_mib}M" | sha256sum | cut -d' ' -f1)"
cmdline="$cmdline vmdev.lan_small_sha256=$(yes vmdev-lan | head -c 1M | sha256sum | cut -d' ' -f1)"
cmdline="$cmdline vmdev.passt_mac=$passt_mac vmdev.passt_http_port=$passt_http_port"
cmdline="$cmdline vmdev.passt_down_sha256=$(sha256sum < "$work/passt-www/blob" | cut -d' ' -f1)"

declare -A console pid
# vmdev_vm NAME CPUS MEMORY TESTS NET...: boots a vmdev-run VM in the
# background running guest tests TESTS, each NET a --net socket=PATH,...
vmdev_vm() {
    local name=$1 cpus=$2 memory=$3 tests=$4
    shift 4
    local args=(--kernel "$kernel" --initramfs "$initrd" --cpus "$cpus"
        --memory "$memory" --stats --cmdline "$cmdline vmdev.test=$tests")
    local net
    if [ -z "$nested" ]; then
        console[$name]=$work/$name-console.log
        for net in "$@"; do args+=(--net "$net"); done
        timeout -k 5 "$limit" "$vmm" "${args[@]}" --serial "file=${console[$name]}" \
            < /dev/null > "$work/$name.out" 2>&1 &
        pid[$name]=$!
        return
    fi
    # The outer guest can write only its share, CACHE/vm-NAME (nested.sh).
    # The redirections below are nested.sh's: NAME.out has the outer
    # guest's console, the VMM's own output among it.
    console[$name]=$nested/vm-$name/console.log
    local ports=() relays=() i=0 sock
    for net in "$@"; do
        sock=${net%%,*}
        ports+=(--port "net$i=${sock#socket=}")
        relays+=("/run/$name-net$i.sock=net$i")
        args+=(--net "socket=/run/$name-net$i.sock,${net#*,}")
        i=$((i + 1))
    done
    VMDEV_NESTED_TIMEOUT=$((limit + 60)) "$here/nested.sh" --name "vm-$name" \
        --cpus "$cpus" --cache "$nested" "${ports[@]}" -- \
        "$work/port-relay" "${relays[@]}" -- \
        timeout -k 5 "$limit" "$vmm" "${args[@]}" --serial "file=${console[$name]}" \
        < /dev/null > "$work/$name.out" 2>&1 &
    pid[$name]=$!
}

if [ -n "$nested" ]; then
    gcc -O2 -Wall -Wextra -Werror -o "$work/port-relay" "$here/port-relay.c" ||
        setup="cannot build port-relay"
fi
if [ -n "$setup" ]; then
    fail lan "host side: $setup"
    exit 1
fi
a_tests=lan a_nets=("socket=$work/lan.sock,mac=$a_mac")
# Written by vmdev-run, so where a nested one can write (its share).
passt_pcap=$work/passt.pcap
[ -z "$nested" ] || passt_pcap=$nested/vm-a/passt.pcap
if [ -z "$passt_setup" ]; then
    a_tests=passt,lan
    a_nets+=("socket=$passt_sock,mac=$passt_mac,pcap=$passt_pcap")
fi
echo "interop: booting vmdev-run VMs a ($a_tests) and b (lanpeer) and a QEMU VM" \
    "(lanqemu) on vmdev-switch$([ -n "$nested" ] && echo ", each vmdev-run VM nested in its own outer guest") (limit $limit s)"
start=$EPOCHREALTIME
vmdev_vm a 2 256M "$a_tests" "${a_nets[@]}"
vmdev_vm b 1 192M lanpeer "socket=$work/lan.sock,mac=$b_mac"
console[qemu]=$work/qemu-console.log
timeout -k 5 "$limit" qemu-system-x86_64 -machine q35,accel=tcg -cpu max -smp 1 -m 256M \
    -nodefaults -display none -vga none -monitor none -no-reboot \
    -kernel "$kernel" -initrd "$initrd" -append "$cmdline vmdev.test=lanqemu" \
    -netdev "stream,id=lan,server=off,addr.type=unix,addr.path=$work/lan.sock" \
    -device "virtio-net-pci,netdev=lan,mac=$qemu_mac" \
    -serial "file:${console[qemu]}" < /dev/null > "$work/qemu.out" 2>&1 &
pid[qemu]=$!

declare -A status
wait "${pid[a]}"; status[a]=$?
wait "${pid[qemu]}"; status[qemu]=$?
# What b waits for has come (or never will): it has a minute to finish.
b_stopped_by_us=0
if ! timeout 60 tail --pid="${pid[b]}" -f /dev/null; then
    kill "${pid[b]}" 2>/dev/null
    b_stopped_by_us=1
fi
wait "${pid[b]}"; status[b]=$?
echo "interop: VMs ran $(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"
kill "${servers[@]}" 2>/dev/null
wait "$switch_pid" 2>/dev/null
servers=()

# marker VM TEST: the guest's verdict line for TEST; data VM KEY: the value
# it printed for KEY.
marker() {
    tr -d '\r' < "${console[$1]}" 2>/dev/null |
        grep -ao "VMDEV-TEST-\(PASS\|FAIL\) $2\(:.*\)\?$" | head -n 1
}
data() {
    tr -d '\r' < "${console[$1]}" 2>/dev/null |
        grep -ao "VMDEV-DATA $2 .*" | head -n 1 | cut -d' ' -f3-
}
# verdict VM TEST: 0 if the guest passed TEST, else fails it with why.
verdict() {
    local m
    m=$(marker "$1" "$2")
    case "$m" in
    "VMDEV-TEST-PASS $2") return 0 ;;
    "") fail "$2" "no result on VM $1's console" ;;
    *) fail "$2" "VM $1: ${m#"VMDEV-TEST-FAIL $2: "}" ;;
    esac
    return 1
}
# same_upload TEST SENDER KEY RECEIVER KEY: both printed the same sha256
# and length.
same_upload() {
    local sent got
    sent=$(data "$2" "$3") got=$(data "$4" "$5")
    [ -n "$sent" ] && [ "$sent" = "$got" ] && return 0
    fail "$1" "VM $4 got '${got:-nothing}' for the upload VM $2 sent as '${sent:-nothing}'"
    return 1
}

if [ -n "$passt_setup" ]; then
    fail passt "host side: $passt_setup"
    fail pcap "no capture to check: $passt_setup"
elif verdict a passt; then
    echo "interop: passt's lease for VM a (address, router): $(data a passt.lease)"
    pass passt
    # The capture: DHCP both ways (discover and request from the guest's
    # port 68, offer and ack from the server's 67), and the download's
    # whole span of TCP sequence numbers from the web server's port.
    tcpdump -nn -S -r "$passt_pcap" > "$work/passt-pcap.txt" 2>&1 ||
        echo "interop: tcpdump -r $passt_pcap: $(tail -n 1 "$work/passt-pcap.txt")"
    asked=$(grep -c '\.68 > [0-9.]*\.67: ' "$work/passt-pcap.txt")
    answered=$(grep -c '\.67 > [0-9.]*\.68: ' "$work/passt-pcap.txt")
    span=$(grep "\.$passt_http_port > .* seq [0-9]*:[0-9]*," "$work/passt-pcap.txt" |
        sed 's/.* seq \([0-9]*\):\([0-9]*\),.*/\1 \2/' |
        awk 'NR == 1 || $1 < lo { lo = $1 } $2 > hi { hi = $2 } END { print hi - lo }')
    blob=$(stat -c %s "$work/passt-www/blob")
    if [ "$asked" -lt 2 ] || [ "$answered" -lt 2 ] || [ "${span:-0}" -lt "$blob" ]; then
        fail pcap "$passt_pcap has $asked DHCP messages from the guest and $answered to it (want 2 or more each), and ${span:-no} bytes of sequence space from port $passt_http_port (want $blob or more)"
    else
        echo "interop: VM a's passt card captured DHCP both ways ($asked, $answered) and $span bytes from the web server"
        pass pcap
    fi
else
    fail pcap "no capture to check: the passt test failed"
fi
if verdict a lan && verdict b lanpeer && same_upload lan a lan.up b lanpeer.vmdev_up; then
    echo "interop: lan moved $lan_mib MiB each way between two vmdev-run VMs in $(data a lan.seconds) s"
    pass lan
fi
if verdict qemu lanqemu && same_upload lanqemu qemu lanqemu.up b lanpeer.qemu_up; then
    pass lanqemu
fi
grep -o 'vmdev-switch: .*' "$work/switch.log" | grep -v listening | sed 's/^/interop: /'

# Each VM powered off (status 0) after its tests.
stopped=""
for vm in a b qemu; do
    if tr -d '\r' < "${console[$vm]}" 2>/dev/null | grep -aq VMDEV-TESTS-DONE &&
        [ "${status[$vm]}" -eq 0 ]; then
        continue
    fi
    fail "poweroff-$vm" "VM $vm ended with status ${status[$vm]}$(tr -d '\r' < "${console[$vm]}" 2>/dev/null |
        grep -aq VMDEV-TESTS-DONE || echo " before finishing its tests")"
    [ "$vm" = qemu ] || stopped="$stopped $vm"
done

if [ $failures -ne 0 ]; then
    for vm in a b qemu; do
        echo "interop: VM $vm's console (${console[$vm]}), last lines:"
        tail -n 15 "${console[$vm]}" 2>/dev/null | tr -d '\r' | sed 's/^/  | /'
        if [ -n "$nested" ] && [ "$vm" != qemu ]; then
            echo "interop: VM $vm's outer guest ($work/$vm.out), last lines:"
            tail -n 12 "$work/$vm.out" 2>/dev/null | sed 's/^/  | /'
        else
            grep -a 'vmdev-run:' "$work/$vm.out" 2>/dev/null | tail -n 8 | sed 's/^/  | /'
        fi
    done
    for f in switch passt; do
        echo "interop: $f's output, last lines:"
        grep -v syslog "$work/$f.log" 2>/dev/null | tail -n 5 | sed 's/^/  | /'
    done
    # A VM that stopped on its own with no test of its own failed: the
    # nested layer's fault (seen: the guest's kernel panicking on a double
    # fault at its syscall entry, status 3). Not b when this script
    # stopped it for waiting on the others after they had finished.
    crashed=""
    for vm in $stopped; do
        [ "$vm" = b ] && [ $b_stopped_by_us = 1 ] && continue
        tr -d '\r' < "${console[$vm]}" 2>/dev/null | grep -aq "VMDEV-TEST-FAIL" ||
            crashed="$crashed $vm"
    done
    if [ -n "$nested" ] && [ -n "$crashed" ]; then
        echo "interop: vmdev-run VM(s)$crashed stopped on their own under nested KVM, no test of theirs failed"
        exit 3
    fi
    exit 1
fi
echo "interop: all passed"
