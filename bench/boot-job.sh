#!/bin/bash
# boot-job.sh --vmm VMM --kernel FILE --initrd FILE --runs N --work DIR
#
# Runs where /dev/kvm works (inside bench/boot.sh's nested guest): boots the
# same kernel and initramfs under vmdev-run, QEMU -M q35 and QEMU -M microvm,
# N times each, and for each boot records the wall time from launch to the
# first line of init, the KVM exits until then (the host kernel's
# /sys/kernel/debug/kvm/exits, which counts every exit, handled in the
# kernel or not), and the VMM's resident memory beyond guest RAM at that
# moment (Rss - Pss_Shmem: every VMM here keeps guest RAM in a memfd).
# Prints one line per boot and a median line per VMM.
set -u
vmm="" kernel="" initrd="" runs=5 work=""
while [ $# -gt 0 ]; do
    case "$1" in
    --vmm) vmm="$2"; shift 2 ;;
    --kernel) kernel="$2"; shift 2 ;;
    --initrd) initrd="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    *) echo "boot-job: unknown option $1" >&2; exit 2 ;;
    esac
done
mkdir -p "$work"
mountpoint -q /sys/kernel/debug || mount -t debugfs debugfs /sys/kernel/debug
exits_file=/sys/kernel/debug/kvm/exits
[ -r "$exits_file" ] || { echo "boot-job: no $exits_file" >&2; exit 1; }

append="console=ttyS0 quiet panic=-1"
mem=256M
qemu_common=(qemu-system-x86_64 -enable-kvm -cpu host -smp 1 -m "$mem"
    -object "memory-backend-memfd,id=ram,size=$mem"
    -display none -nodefaults -no-reboot -serial stdio
    -kernel "$kernel" -initrd "$initrd" -append "$append")

launch() {
    case "$1" in
    vmdev-run) exec "$vmm" --kernel "$kernel" --initramfs "$initrd" \
                   --cmdline "$append" --cpus 1 --memory "$mem" --serial stdio ;;
    qemu-q35) exec "${qemu_common[@]}" -M q35,memory-backend=ram ;;
    qemu-microvm) exec "${qemu_common[@]}" -M microvm,memory-backend=ram ;;
    esac
}

# one NAME: prints "NAME ms exits rss_overhead_kib"
one() {
    local log="$work/$1.log" e0 t0 t1 e1 pid rss shmem i
    : > "$log"
    e0=$(cat "$exits_file")
    t0=$EPOCHREALTIME
    launch "$1" < /dev/null > "$log" 2>&1 &
    pid=$!
    for ((i = 0; i < 12000; i++)); do
        grep -q VMDEV-BENCH-INIT "$log" && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.01
    done
    t1=$EPOCHREALTIME
    e1=$(cat "$exits_file")
    rss=$(awk '/^Rss:/ { print $2 }' "/proc/$pid/smaps_rollup" 2>/dev/null)
    shmem=$(awk '/^Pss_Shmem:/ { print $2 }' "/proc/$pid/smaps_rollup" 2>/dev/null)
    if ! grep -q VMDEV-BENCH-INIT "$log"; then
        echo "boot-job: $1 did not reach init; its output:" >&2
        tail -n 20 "$log" >&2
        kill -9 "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        return 1
    fi
    # Power-off is not measured; a VMM that does not stop within 10 s of
    # the guest's poweroff is stopped.
    for ((i = 0; i < 1000; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.01
    done
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    awk -v n="$1" -v a="$t0" -v b="$t1" -v e="$((e1 - e0))" \
        -v r="${rss:-0}" -v s="${shmem:-0}" \
        'BEGIN { printf "%s %.0f %d %d\n", n, (b - a) * 1000, e, r - s }'
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

results="$work/results"
: > "$results"
for ((r = 1; r <= runs; r++)); do
    for name in vmdev-run qemu-q35 qemu-microvm; do
        line=$(one "$name") || exit 1
        echo "boot $r: $line"
        echo "$line" >> "$results"
    done
done
echo "median over $runs boots: VMM boot_to_init_ms kvm_exits rss_overhead_kib"
for name in vmdev-run qemu-q35 qemu-microvm; do
    ms=$(awk -v n="$name" '$1 == n { print $2 }' "$results" | median)
    ex=$(awk -v n="$name" '$1 == n { print $3 }' "$results" | median)
    kb=$(awk -v n="$name" '$1 == n { print $4 }' "$results" | median)
    echo "MEDIAN $name $ms $ex $kb"
done
