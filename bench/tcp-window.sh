#!/bin/bash
# bench/tcp-window.sh CAPTURE [RECEIVER]
#
# How a bulk TCP transfer to RECEIVER (default 10.0.2.15, slirp's guest)
# used its window, from a capture (vmdev-run's pcap=, bench/net.sh
# --pcap): the flow carrying the most payload to RECEIVER, its throughput
# while data flowed, the largest window field the receiver sent (as sent:
# with window scaling the window is larger by its scale), how many
# bytes each of its ACKs acknowledged (median) and how often it sent one,
# and how much of the payload was sent again (retransmissions).
# A receiver that acknowledges a whole window at a time and never offers
# more than 65535 bytes (no window scaling) gets at most 64 KiB per round
# trip, whatever the link does. Needs tcpdump.
set -eu -o pipefail
[ $# -ge 1 ] || { echo "usage: $0 CAPTURE [RECEIVER]" >&2; exit 2; }
capture=$1 receiver=${2:-10.0.2.15}
command -v tcpdump > /dev/null || { echo "tcp-window: needs tcpdump" >&2; exit 2; }
lines=$(mktemp)
trap 'rm -f "$lines"' EXIT
# One line per TCP segment: time, source, destination, then the fields.
tcpdump -tt -nn -S --time-stamp-precision=nano -r "$capture" tcp 2>"$lines.err" |
    sed 's/: Flags/ Flags/' > "$lines" ||
    { echo "tcp-window: tcpdump -r $capture: $(tail -n 1 "$lines.err")" >&2; rm -f "$lines.err"; exit 1; }
rm -f "$lines.err"
awk -v rcv="$receiver" '
function host(a) { sub(/\.[0-9]+$/, "", a); return a }
function field(name,   i) {
    for (i = 6; i < NF; i++) if ($i == name) { v = $(i + 1); sub(/,$/, "", v); return v }
    return ""
}
{ t[NR] = $1; src[NR] = $3; dst[NR] = $5; sub(/:$/, "", dst[NR])
  len[NR] = field("length") + 0; ackv[NR] = field("ack"); win[NR] = field("win") + 0
  seqv[NR] = field("seq")
  if (host(dst[NR]) == rcv) bytes[src[NR] ">" dst[NR]] += len[NR] }
END {
    best = ""; for (f in bytes) if (best == "" || bytes[f] > bytes[best]) best = f
    if (best == "" || bytes[best] == 0) { print "tcp-window: no TCP payload to " rcv; exit 1 }
    split(best, ends, ">"); from = ends[1]; to = ends[2]
    n = 0; acks = 0; maxwin = 0; first = last = 0
    for (i = 1; i <= NR; i++) {
        if (src[i] == from && dst[i] == to && len[i] > 0) {
            if (!first) first = t[i]; last = t[i]; n++
            if (len[i] > biggest) biggest = len[i]
            # Sent again: below the highest byte already sent (a stream
            # to the guest does not reorder).
            split(seqv[i], r, ":"); s0 = r[1] + 0; s1 = r[2] + 0
            if (n > 1 && s0 < front) resent += (s1 < front ? s1 : front) - s0
            if (n == 1 || s1 > front) front = s1
            if (n == 1) start = s0
        } else if (src[i] == to && dst[i] == from && first) {
            if (win[i] > maxwin) maxwin = win[i]
            if (ackv[i] == "") continue # an RST without an ACK, say
            a = ackv[i] + 0
            if (prev != "" && a > prev) acked[++acks] = a - prev
            prev = a
        }
    }
    secs = last - first
    mbits = 0; if (secs > 0) mbits = bytes[best] * 8 / secs / 1e6
    printf "flow %s > %s: %.0f bytes in %d segments (largest %d) over %.3f s, %.1f Mbit/s\n",
        from, to, bytes[best], n, biggest, secs, mbits
    good = 0; if (secs > 0) good = (front - start) * 8 / secs / 1e6
    printf "sent again: %.0f bytes (%.0f%%); new data %.0f bytes, %.1f Mbit/s\n",
        resent, resent * 100 / bytes[best], front - start, good
    if (!acks) { print "no ACKs that moved"; exit 0 }
    # median of the bytes each ACK acknowledged (insertion sort: few)
    for (i = 2; i <= acks; i++) { v = acked[i]; for (j = i - 1; j >= 1 && acked[j] > v; j--) acked[j + 1] = acked[j]; acked[j + 1] = v }
    printf "receiver: largest window %d; %d ACKs, median %d bytes acknowledged each, one every %.0f us\n",
        maxwin, acks, acked[int((acks + 1) / 2)], secs * 1e6 / acks
}' "$lines"
