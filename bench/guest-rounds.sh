# bench/guest-rounds.sh: what bench/net.sh and bench/blk.sh share, sourced
# after they set top (the checkout).

# The guest bench's kernel and initramfs (mkinitramfs.sh's netbench role,
# which carries iperf3 and bench/guest/) in cache (.cache/guest), and
# vmdev-run built; guest_job is what every job script is given to boot
# that guest.
guest_bench_prepare() {
    cache="$top/.cache/guest"
    mkdir -p "$cache"
    guest_job=(--vmm "$top/build/tools/vmm/vmdev-run"
               --kernel "$cache/kernel/vmlinuz"
               --initrd "$cache/netbench-initramfs.cpio.gz")
    command -v iperf3 > /dev/null || {
        SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends iperf3 > /dev/null
    }
    make -C "$top" --no-print-directory deps build > /dev/null
    "$top/scripts/fetch-kernel.sh" "$cache"
    "$top/tests/guest/mkinitramfs.sh" "$cache/kernel" netbench "$cache/netbench-initramfs.cpio.gz"
    gcc -O1 -o "$cache/kvm-usable" "$top/tests/guest/kvm-usable.c"
}

# guest_bench_rounds NAME RUNS "CONFIG..." NESTED_TIMEOUT JOB...: RUNS
# rounds, each running JOB --configs CONFIG --work DIR once per CONFIG.
# Where nested, each in a fresh nested guest of its own: the nested
# layer's faults (docs/architecture.md) then cost that one measurement,
# not the rest of the round. The lines of DIR/results go to
# $cache/NAME-results prefixed by the round; what each printed stays in
# $cache/NAME-logs (emptied first).
guest_bench_rounds() {
    local name=$1 runs=$2 configs=$3 timeout=$4 r c work
    shift 4
    results="$cache/$name-results" logs="$cache/$name-logs"
    : > "$results"
    rm -rf "$logs"
    mkdir -p "$logs"
    for ((r = 1; r <= runs; r++)); do
        for c in $configs; do
            rm -rf "$cache/$name-work" "$cache/$name/work"
            if "$cache/kvm-usable" > /dev/null; then
                work="$cache/$name-work"
                "$@" --configs "$c" --work "$work" > "$logs/$r-$c.job" 2>&1 || true
            else
                work="$cache/$name/work" # the nested guest's share
                VMDEV_NESTED_TIMEOUT=$timeout \
                    "$top/tests/guest/nested.sh" --name "$name" --cache "$cache" -- \
                    "$@" --configs "$c" --work "$work" > "$logs/$r-$c.job" 2>&1 || true
            fi
            cp "$work/$c.log" "$logs/$r-$c.log" 2>/dev/null || true
            cp "$work/$c.pcap" "$logs/$r-$c.pcap" 2>/dev/null || true
            if grep -q "^$c " "$work/results" 2>/dev/null; then
                echo "round $r: $(cat "$work/results")"
                sed "s/^/$r /" "$work/results" >> "$results"
            else
                echo "round $r: $c measured nothing (see $logs/$r-$c.*)"
            fi
        done
    done
}

# The middle of the numbers on stdin (the lower one of an even count).
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
