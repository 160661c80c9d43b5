#!/bin/bash
# vmdev-run's command line, without a guest: --help documents every
# option, and each bad option or value is refused before anything starts
# (exit 2, a message naming the option and the value, no file written).
set -u
vmm=${1:?usage: $0 VMDEV_RUN}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. "$(dirname "$0")/lib.sh"

help=$("$vmm" --help) || fail "--help exited $?"
for option in --kernel --initramfs --cmdline --cpus --memory --disk --net \
              --serial --console --rng --seccomp --api-socket --stats --help; do
    grep -q -- "^  $option" <<<"$help" || fail "--help does not document $option"
done
grep -q "Exit status" <<<"$help" || fail "--help does not give the exit statuses"
for id in ioapic pic pit com1 rtc pm i8042 pci0; do
    grep -qw "$id" <<<"$help" || fail "--help does not list the machine's id $id"
done

disk=$work/disk.img
truncate -s 1M "$disk"
# Each refused run also names a --serial file, which must not appear.
refused_file=$work/serial.out refused_what="the --serial file"
refused_cmd=("$vmm" --kernel "$disk" --serial "file=$refused_file")
refused_name=vmdev-run

expect_refused "--cpus '0'" -- --cpus 0
expect_refused "--cpus '65'" -- --cpus 65
expect_refused "--cpus 'two'" -- --cpus two
expect_refused "--memory '12X'" -- --memory 12X
expect_refused "--memory '1M'" -- --memory 1M
expect_refused "--memory '99999999999999999999G'" -- --memory 99999999999999999999G
expect_refused "--seccomp 'strict'" -- --seccomp strict
expect_refused "--api-socket '': expected a path" -- --api-socket ""
expect_refused "--seccomp-test-stray 'pit'" -- --seccomp-test-stray pit
expect_refused "--console 'bogus'" -- --console bogus
expect_refused "--console 'hvc,input=$work/none'" -- --console "hvc,input=$work/none"
expect_refused "input= needs a console" -- --console "off,input=$disk"
expect_refused "input=FILE needs a file" -- --console "hvc,input="
expect_refused "'--frobnicate'" -- --frobnicate
expect_refused "'extra'" -- extra
expect_refused "--disk 'path=$work/none'" -- --disk "path=$work/none"
expect_refused "readonly must be on or off" -- --disk "path=$disk,readonly=maybe"
expect_refused "--disk 'path=$disk,bogus=1'" -- --disk "path=$disk,bogus=1"
expect_refused "path=FILE is required" -- --disk readonly=on
expect_refused "--disk 'path=$disk,id=9x'" -- --disk "path=$disk,id=9x"
expect_refused "--disk 'path=$disk,id='" -- --disk "path=$disk,id="
expect_refused "id must be" -- --disk "path=$disk,id=$(printf 'a%.0s' {1..32})"
expect_refused "machine's own devices" -- --disk "path=$disk,id=rtc"
expect_refused "another --disk has that id" -- \
    --disk "path=$disk,id=data" --disk "path=$disk,id=data"
expect_refused "format must be raw or qcow2" -- --disk "path=$disk,format=vmdk"
expect_refused "cache must be writeback, writethrough or none" -- \
    --disk "path=$disk,cache=unsafe"
expect_refused "discard must be on or off" -- --disk "path=$disk,discard=yes"
expect_refused "discard=on needs a writable disk" -- \
    --disk "path=$disk,readonly=on,discard=on"
for n in 0 65 two -1; do
    expect_refused "--disk 'path=$disk,num_queues=$n': num_queues must be" -- \
        --disk "path=$disk,num_queues=$n"
done
for n in 2 3 96 2048; do
    expect_refused "--disk 'path=$disk,queue_size=$n': queue_size must be" -- \
        --disk "path=$disk,queue_size=$n"
done
expect_refused "serial must be 1 to 20 characters" -- \
    --disk "path=$disk,serial=$(printf 's%.0s' {1..21})"
# Images that cannot be used are refused before the guest starts too.
qcow2=$work/looks-like.qcow2
{ printf 'QFI\xfb'; head -c 4092 /dev/zero; } > "$qcow2"
expect_refused "--disk path=$qcow2: the image carries the qcow2 magic; give format=qcow2" -- \
    --disk "path=$qcow2"
mkfifo "$work/fifo"
expect_refused "--disk path=$work/fifo: not a regular file or block device" -- \
    --disk "path=$work/fifo"
qemu-img create -q -f qcow2 -o compat=0.10 "$work/v2.qcow2" 1M
expect_refused "--disk path=$work/v2.qcow2: qcow2 version 2 images open read-only" -- \
    --disk "path=$work/v2.qcow2,format=qcow2"
expect_refused "--disk path=$disk: not a qcow2 image" -- \
    --disk "path=$disk,format=qcow2,readonly=on"
expect_refused "too many disks" -- $(for i in {0..8}; do echo "--disk path=$disk"; done)
# Backing files: the keys' own values first.
top=$work/top.qcow2
qemu-img create -q -f qcow2 -b disk.img -F raw "$top"
expect_refused "--disk 'path=$top,format=qcow2,backing=': backing must be a file or off" -- \
    --disk "path=$top,format=qcow2,backing="
expect_refused "--disk 'path=$top,format=qcow2,backing=$disk,backing_format=vmdk': backing_format must be raw or qcow2" -- \
    --disk "path=$top,format=qcow2,backing=$disk,backing_format=vmdk"
expect_refused "--disk 'path=$top,backing_outside=yes': backing_outside must be on or off" -- \
    --disk "path=$top,backing_outside=yes"
expect_refused "backing_format= needs backing=PATH" -- \
    --disk "path=$top,format=qcow2,backing_format=raw"
expect_refused "backing_format= needs backing=PATH" -- \
    --disk "path=$top,format=qcow2,backing=off,backing_format=raw"
expect_refused "backing=PATH needs format=qcow2" -- --disk "path=$disk,backing=$disk"
expect_refused "--disk 'path=$top,format=qcow2,backing=$work/none': backing=PATH: No such file" -- \
    --disk "path=$top,format=qcow2,backing=$work/none"
expect_refused "--disk path=$top: $top names a backing file ('disk.img'), and backing=off refuses any" -- \
    --disk "path=$top,format=qcow2,backing=off"
# Then backing file names an image may not give, each refused with its rule.
qemu-img create -q -f qcow2 -u -b /etc/passwd -F raw "$work/abs.qcow2" 1M
expect_refused "--disk path=$work/abs.qcow2: backing file name '/etc/passwd' in $work/abs.qcow2 is absolute; backing names must stay in the image's directory (backing=PATH names the file explicitly, backing_outside=on allows it)" -- \
    --disk "path=$work/abs.qcow2,format=qcow2,readonly=on"
mkdir "$work/sub"
qemu-img create -q -f qcow2 -u -b ../disk.img -F raw "$work/sub/up.qcow2" 1M
expect_refused "backing file name '../disk.img' in $work/sub/up.qcow2 leads outside the image's directory (to $(realpath "$disk")); backing names must stay" -- \
    --disk "path=$work/sub/up.qcow2,format=qcow2,readonly=on"
qemu-img create -q -f qcow2 -u -b /dev/zero -F raw "$work/dev.qcow2" 1M
expect_refused "backing file name '/dev/zero' in $work/dev.qcow2 is a character device, not a regular file" -- \
    --disk "path=$work/dev.qcow2,format=qcow2,readonly=on,backing_outside=on"
# ... and what the keys allow gets past the disks (the junk kernel, or a
# missing /dev/kvm, stops the run after them).
for allowed in "path=$work/abs.qcow2,format=qcow2,readonly=on,backing_outside=on" \
               "path=$work/sub/up.qcow2,format=qcow2,readonly=on,backing_outside=on" \
               "path=$work/abs.qcow2,format=qcow2,readonly=on,backing=$disk" \
               "path=$work/dev.qcow2,format=qcow2,readonly=on,backing=./$(realpath --relative-to=. "$disk"),backing_format=raw" \
               "path=$top,format=qcow2"; do
    timeout 20 "${refused_cmd[@]}" --disk "$allowed" >/dev/null 2>"$work/stderr"
    grep -q -- "--disk" "$work/stderr" && fail "--disk $allowed: $(cat "$work/stderr")"
    rm -f "$refused_file"
done
sock=$work/switch.sock
expect_refused "a backend is required: slirp, socket=ADDRESS or tap=IFNAME" -- --net mac=52:54:00:00:00:01
expect_refused "--net 'socket=': socket= needs" -- --net socket=
expect_refused "--net 'sock=$sock': unknown key" -- --net "sock=$sock"
expect_refused "expected slirp, socket=ADDRESS or tap=IFNAME, then key=value pairs" -- --net "$sock"
expect_refused "expected slirp, socket=ADDRESS or tap=IFNAME" -- --net "mac=52:54:00:00:00:01,slirp"
expect_refused "slirp, socket= and tap= are each a backend" -- --net "slirp,socket=$sock"
expect_refused "slirp, socket= and tap= are each a backend" -- --net "tap=vmdevtap9,socket=$sock"
expect_refused "--net 'tap=': tap= needs an interface name" -- --net tap=
expect_refused "tap= needs an interface name of 1 to 15" -- --net tap=a-name-far-too-long
expect_refused "tap= needs an interface name of 1 to 15" -- --net 'tap=tap%d'
expect_refused "bridge= is for tap" -- --net "socket=$sock,bridge=br0"
expect_refused "another --net has that tap" -- --net tap=vmdevtap9 --net tap=vmdevtap9
expect_refused "bridge= needs an interface name" -- --net "tap=vmdevtap9,bridge="
expect_refused "--net 'socket=$sock,ipv6=on': hostfwd=, ipv6= and restrict= are for slirp" -- \
    --net "socket=$sock,ipv6=on"
expect_refused "--net 'slirp,ipv6=yes': ipv6 must be on or off" -- --net slirp,ipv6=yes
expect_refused "--net 'slirp,restrict=1': restrict must be on or off" -- --net slirp,restrict=1
expect_refused "the host port is not a number from 1 to 65535" -- \
    --net "slirp,hostfwd=tcp::0-:22"
expect_refused "'tcp:1.2.3:22-:22': the host address is not" -- \
    --net "slirp,hostfwd=tcp:1.2.3:22-:22"
expect_refused "the guest side is not [GUESTADDR]:GUESTPORT" -- \
    --net "slirp,hostfwd=tcp::2222-22"
expect_refused "too many hostfwd=" -- \
    --net "slirp$(for i in {1..17}; do echo -n ",hostfwd=tcp::$((2000 + i))-:22"; done)"
for m in 01:54:00:00:00:01 52:54:00:00:00 52:54:00:00:00:0g 52:54:00:00:00:011; do
    expect_refused "--net 'socket=$sock,mac=$m': mac must be" -- \
        --net "socket=$sock,mac=$m"
done
for n in 0 17 x; do
    expect_refused "--net 'socket=$sock,queues=$n': queues must be" -- \
        --net "socket=$sock,queues=$n"
done
for n in 32 100 2048; do
    expect_refused "--net 'socket=$sock,queue_size=$n': queue_size must be" -- \
        --net "socket=$sock,queue_size=$n"
done
for n in 67 65536; do
    expect_refused "--net 'socket=$sock,mtu=$n': mtu must be" -- \
        --net "socket=$sock,mtu=$n"
done
# slirp's own link takes the card's MTU, within libslirp's range.
expect_refused "--net 'slirp,mtu=65522': mtu with slirp must be at most 65521" -- \
    --net "slirp,mtu=65522"
expect_refused "--net 'slirp,pcap=': pcap needs a file name" -- --net "slirp,pcap="
# A capture file that cannot be written is refused before the guest
# exists, and one opened for an earlier card is removed again.
expect_refused "--net pcap=$work/no/such/dir.pcap: " -- \
    --net "slirp,pcap=$work/first.pcap" --net "slirp,pcap=$work/no/such/dir.pcap"
[ -e "$work/first.pcap" ] && fail "a refused command line left $work/first.pcap"
echo keep > "$work/old.pcap"
expect_refused "--net pcap=$work/no/such/dir.pcap: " -- \
    --net "slirp,pcap=$work/old.pcap" --net "slirp,pcap=$work/no/such/dir.pcap"
[ "$(cat "$work/old.pcap")" = keep ] || fail "a refused command line changed $work/old.pcap"
expect_refused "another --net has that pcap file" -- \
    --net "slirp,pcap=$work/one.pcap" --net "slirp,pcap=$work/one.pcap"
truncate -s 1M "$work/data.img"
expect_refused "--net pcap=$work/data.img: that is --disk's file" -- \
    --disk "path=$work/data.img" --net "slirp,pcap=$work/data.img"
expect_refused "--net pcap=$disk: that is --kernel's file" -- --net "slirp,pcap=$disk"
expect_refused "--net pcap=$work: Is a directory" -- --net "slirp,pcap=$work"
expect_refused "coalesce_usecs must be" -- --net "socket=$sock,coalesce_usecs=1000001"
expect_refused "coalesce_frames must be" -- --net "socket=$sock,coalesce_frames=-1"
expect_refused "another --net has that mac" -- --net "socket=$sock,mac=52:54:00:12:34:57" \
    --net "socket=$sock"
expect_refused "another --disk has that id" -- --disk "path=$disk,id=lan" \
    --net "socket=$sock,id=lan"
expect_refused "another --net has that id" -- --net "socket=$sock,id=lan" \
    --net "socket=$sock,id=lan"
expect_refused "too many cards" -- $(for i in {0..8}; do echo "--net socket=$sock"; done)

# --serial's own value, checked with no file option in play.
"$vmm" --kernel "$disk" --serial bogus >/dev/null 2>"$work/stderr"
rc=$?
[ "$rc" = 2 ] && grep -qF -- "--serial 'bogus'" "$work/stderr" ||
    fail "--serial bogus: exit $rc: $(cat "$work/stderr")"
"$vmm" >/dev/null 2>"$work/stderr"
rc=$?
[ "$rc" = 2 ] && grep -qF -- "--kernel FILE is required" "$work/stderr" ||
    fail "no --kernel: exit $rc: $(cat "$work/stderr")"

exit $failed
