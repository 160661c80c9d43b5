#!/bin/bash
# vmdev-switch's command line: --help documents every option; each bad
# option or value is refused before anything is created (exit 2, a message
# naming the option and the value, no socket file); a switch listens,
# refuses a second switch on its socket, removes the socket at SIGTERM
# (exit 0), and a socket file left by a killed switch is taken over.
set -u
sw=${1:?usage: $0 VMDEV_SWITCH}
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; rm -rf "$work"' EXIT
. "$(dirname "$0")/lib.sh"

help=$("$sw" --help) || fail "--help exited $?"
for option in --listen --uplink --stats --help; do
    grep -qE -- "^  (-h, )?$option" <<<"$help" || fail "--help does not document $option"
done
grep -q "Exit status" <<<"$help" || fail "--help does not give the exit statuses"

sock=$work/switch.sock
refused_cmd=("$sw") refused_name=vmdev-switch
refused_file=$sock refused_what="the socket"
expect_refused "--listen PATH is required" --
expect_refused "--listen '': not a UNIX socket path" -- --listen ''
expect_refused "not a UNIX socket path" -- --listen "$work/$(printf 'x%.0s' {1..120})"
expect_refused "--uplink 'wire': expected slirp or tap=IFNAME" -- --listen "$sock" --uplink wire
expect_refused "--uplink 'slirp,ipv6=yes': ipv6 must be on or off" -- --listen "$sock" --uplink slirp,ipv6=yes
expect_refused "--uplink 'slirp,hostfwd=tcp:5555': " -- --listen "$sock" --uplink slirp,hostfwd=tcp:5555
expect_refused "bridge= is for tap" -- --listen "$sock" --uplink slirp,bridge=br0
expect_refused "--uplink 'tap=': tap= needs an interface name" -- --listen "$sock" --uplink tap=
expect_refused "tap= needs an interface name" -- --listen "$sock" --uplink tap=a-name-far-too-long
expect_refused "bridge= needs an interface name" -- --listen "$sock" --uplink tap=t0,bridge=
expect_refused "hostfwd=, ipv6= and restrict= are for slirp" -- --listen "$sock" --uplink tap=t0,ipv6=on
expect_refused "unknown key 'socket'" -- --listen "$sock" --uplink socket=/tmp/x
expect_refused "slirp and tap= are each a backend" -- --listen "$sock" --uplink slirp,tap=t0
expect_refused "one uplink only" -- --listen "$sock" --uplink slirp --uplink slirp
expect_refused "unknown option '--listn'" -- --listn "$sock"
expect_refused "unexpected argument 'extra'" -- --listen "$sock" extra

# start N: a switch on $sock, its pid appended to pids and its first line
# of output (read as it arrives) in line.
start() {
    mkfifo "$work/out$1"
    "$sw" --listen "$sock" --stats >"$work/out$1" 2>"$work/err$1" &
    pids+=($!)
    exec {fd}<"$work/out$1"
    IFS= read -r -t 20 -u "$fd" line || line="(nothing: $(cat "$work/err$1"))"
    exec {fd}<&-
}
start 1
pid=${pids[-1]}
[ "$line" = "vmdev-switch: listening on $sock" ] || fail "first line: '$line'"
[ -S "$sock" ] || fail "no socket at $sock"
timeout 10 "$sw" --listen "$sock" >/dev/null 2>"$work/stderr"
rc=$?
[ "$rc" = 1 ] || fail "a second switch on the socket: exit $rc, expected 1"
grep -qF "a switch already listens there" "$work/stderr" ||
    fail "a second switch: $(cat "$work/stderr")"
kill -TERM "$pid"
wait "$pid"
rc=$?
[ "$rc" = 0 ] || fail "after SIGTERM: exit $rc, expected 0"
[ -e "$sock" ] && fail "the socket is still there after SIGTERM"

# A switch killed outright leaves its socket file; the next one takes it.
start 2
kill -KILL "${pids[-1]}"
wait "${pids[-1]}" 2>/dev/null
[ -S "$sock" ] || fail "no stale socket left by the killed switch"
start 3
[ "$line" = "vmdev-switch: listening on $sock" ] ||
    fail "over a stale socket: '$line'"
kill -TERM "${pids[-1]}"
wait "${pids[-1]}"
[ -e "$sock" ] && fail "the socket is still there after the third switch's SIGTERM"
expect_refused "option '--listen' needs a value" -- --listen

exit $failed
