#!/bin/bash
# vmdev-ctl's command line: --help documents every command and option; a
# bad command line is refused (exit 2) before connecting; an unreachable
# socket is exit 1 naming it; against a server answering in QMP's shape
# (a stand-in written here), each command sends its request and prints
# the answer as a table or, with --json, as JSON, and an error answer is
# exit 1 with its description.
set -u
ctl=${1:?usage: $0 VMDEV_CTL}
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$work"' EXIT
. "$(dirname "$0")/lib.sh"

help=$("$ctl" --help) || fail "--help exited $?"
for word in --socket --json --help version device-add device-del device-list stats pause resume query-events quit events; do
    grep -qE -- "^  $word" <<<"$help" || fail "--help does not document $word"
done
grep -q "Exit status" <<<"$help" || fail "--help does not give the exit statuses"

sock=$work/api.sock
refused_cmd=("$ctl") refused_name=vmdev-ctl
refused_file=$work/none refused_what="a file"
expect_refused "--socket PATH is required" -- version
expect_refused "a command is required" -- --socket "$sock"
expect_refused "unknown command 'reboot'" -- --socket "$sock" reboot
expect_refused "version: too many arguments" -- --socket "$sock" version quit
expect_refused "device-add: arguments missing" -- --socket "$sock" device-add
expect_refused "device-add: too many arguments" -- --socket "$sock" device-add disk path=a b
expect_refused "device-add: bad element '=x'" -- --socket "$sock" device-add disk =x
expect_refused "device-del: unexpected '--now'" -- --socket "$sock" device-del d1 --now

"$ctl" --socket "$sock" version >"$work/out" 2>"$work/err"
rc=$?
[ $rc = 1 ] || fail "an absent socket: exit $rc, expected 1"
grep -qF "$sock" "$work/err" || fail "an absent socket: the message lacks the path"

# The stand-in: answers each request by its command, records what came,
# and says "ready" once it listens.
cat > "$work/server.py" <<'PY'
import json, os, socket, sys
path, log = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX)
s.bind(path)
s.listen(4)
print("ready", flush=True)
answers = {
    "version": {"vmdev": "0.1.0", "vmm": "vmdev-run"},
    "device-list": {"devices": [
        {"id": "com1", "type": "uart",
         "resources": [{"kind": "pio", "base": 1016, "size": 8},
                       {"kind": "gsi", "base": 4, "size": 1}]},
        {"id": "virtio-rng0", "type": "virtio-rng", "pci": "04:00.0",
         "port": "root-port3", "state": "removal-pending",
         "resources": [{"kind": "pci-slot", "base": 3, "size": 1}]}]},
    "query-events": {"events": ["DEVICE_DELETED"]},
    "device-add": {},
    "device-del": {"pending": True},
    "stats": {"devices": [{"id": "d1", "type": "virtio-blk", "guest_errors": 0,
                           "interrupts": 7,
                           "disk": {"reads": 3, "requests_by_queue": [2, 1]}}],
              "exits": {"pio": 4, "total": 4},
              "notifications": {"irqfd": 7}},
    "pause": {},
    "resume": {},
}
while True:
    c, _ = s.accept()
    f = c.makefile("rw")
    req = json.loads(f.readline())
    with open(log, "a") as out:
        out.write(json.dumps(req, sort_keys=True) + "\n")
    name = req["execute"]
    if name == "quit":
        reply = {"error": {"class": "GenericError", "desc": "not now"}}
    else:
        # An event first: the client waits for the answer with its id.
        f.write(json.dumps({"event": "X", "data": {}}) + "\n")
        reply = {"return": answers[name]}
    reply["id"] = req["id"]
    f.write(json.dumps(reply) + "\n")
    f.flush()
    c.close()
PY
mkfifo "$work/ready"
python3 "$work/server.py" "$sock" "$work/requests" > "$work/ready" &
pids+=($!)
read -r _ < "$work/ready"

out=$("$ctl" --socket "$sock" version) || fail "version: exit $?"
[ "$out" = "vmdev-run with libvmdev 0.1.0" ] || fail "version printed '$out'"
out=$("$ctl" --socket "$sock" device-list) || fail "device-list: exit $?"
grep -qE '^ID +TYPE +PCI +PORT +STATE +RESOURCES$' <<<"$out" ||
    fail "device-list: no header: $out"
grep -qE '^com1 +uart +- +- +- +pio 0x3f8-0x3ff, gsi 4$' <<<"$out" ||
    fail "device-list: com1's line: $out"
grep -qE '^virtio-rng0 +virtio-rng +04:00.0 +root-port3 +removal-pending +pci-slot 3$' <<<"$out" ||
    fail "device-list: virtio-rng0's line: $out"
# device-add: the type, then --disk's or --net's keys as members, a bare
# word (a --net backend) as true.
"$ctl" --socket "$sock" device-add net slirp,id=n1,queues=2 >/dev/null ||
    fail "device-add: exit $?"
grep -qxF '{"arguments": {"id": "n1", "queues": "2", "slirp": true, "type": "net"}, "execute": "device-add", "id": 1}' "$work/requests" ||
    fail "device-add sent: $(grep device-add "$work/requests")"
out=$("$ctl" --socket "$sock" device-del n1 --force) || fail "device-del: exit $?"
grep -qxF '{"arguments": {"force": true, "id": "n1"}, "execute": "device-del", "id": 1}' "$work/requests" ||
    fail "device-del sent: $(grep device-del "$work/requests")"
[ "$out" = "removal pending: the guest was asked to release the device" ] ||
    fail "device-del printed '$out'"
out=$("$ctl" --socket "$sock" stats d1) || fail "stats: exit $?"
grep -qxF '{"arguments": {"id": "d1"}, "execute": "stats", "id": 1}' "$work/requests" ||
    fail "stats sent: $(grep '"stats"' "$work/requests")"
want=$'d1 (virtio-blk): guest_errors=0 interrupts=7\n  reads=3 requests_by_queue=2,1\nexits: pio=4 total=4\nnotifications: irqfd=7'
[ "$out" = "$want" ] || fail "stats printed '$out'"
"$ctl" --socket "$sock" pause > /dev/null || fail "pause: exit $?"
"$ctl" --socket "$sock" resume > /dev/null || fail "resume: exit $?"
expect_refused "stats: too many arguments" -- --socket "$sock" stats a b
out=$("$ctl" --socket "$sock" --json query-events) || fail "query-events: exit $?"
[ "$out" = '{"events":["DEVICE_DELETED"]}' ] || fail "query-events --json printed '$out'"
"$ctl" --socket "$sock" quit >"$work/out" 2>"$work/err"
rc=$?
[ $rc = 1 ] || fail "an error answer: exit $rc, expected 1"
grep -qF "quit: not now" "$work/err" || fail "an error answer: $(cat "$work/err")"
grep -qx '{"execute": "version", "id": 1}' "$work/requests" ||
    fail "the request sent: $(head -1 "$work/requests")"

[ $failed = 0 ] && echo "ok   vmdev-ctl's command line"
exit $failed
