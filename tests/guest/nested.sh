#!/bin/bash
# nested.sh [--interactive] [--name NAME] [--cpus N] [--port PORT=SOCKET]...
#           --cache DIR -- COMMAND...
#
# Runs COMMAND (absolute paths) inside a QEMU TCG guest whose emulated CPU
# has SVM, so it gets a /dev/kvm from kvm-amd: for machines where /dev/kvm is
# missing or cannot run guests. The guest (guest/nested-init) sees this
# machine's root read-only over 9p, DIR/NAME (default nested) writable at the
# same path, and runs COMMAND with that root as its root. COMMAND's output is
# shown as it arrives; the exit status is COMMAND's. --interactive gives
# COMMAND this terminal as its input (the outer guest's serial console),
# or, when the input is a pipe or a file, that input as a file (the outer
# guest's console would lose what comes before it is set up). Otherwise a
# guest that stops its heartbeat (a count the job's side writes to the
# share every 5 s) for VMDEV_NESTED_SILENCE seconds (default 60; 120 at
# the start, for its boot) has frozen: it is stopped and, like a guest
# that never finished, reported with status 75.
# Each --port gives the guest a virtio-serial port named PORT connected to
# the UNIX socket SOCKET here (port-relay.c makes a socket of it inside).
# Several may run at once under different names.
set -eu

cache="" interactive=0 name=nested cpus=2 ports=()
while [ $# -gt 0 ]; do
    case "$1" in
    --cache) cache="$2"; shift 2 ;;
    --interactive) interactive=1; shift ;;
    --name) name="$2"; shift 2 ;;
    --cpus) cpus="$2"; shift 2 ;;
    --port) ports+=("$2"); shift 2 ;;
    --) shift; break ;;
    *) echo "nested.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
[ -n "$cache" ] && [ $# -gt 0 ] ||
    { echo "usage: $0 [--interactive] [--name NAME] [--cpus N] [--port PORT=SOCKET]... --cache DIR -- COMMAND..." >&2; exit 2; }
# NAME names a directory of DIR that is emptied: not one of the cache's own.
case "$name" in
""|*[!a-z0-9-]*|kernel|work|interop)
    echo "nested.sh: --name '$name': want lower-case letters, digits and '-', not kernel, work or interop" >&2
    exit 2 ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
cache=$(cd "$cache" && pwd)
# Minutes are normal under TCG; this bounds a hang. A normal suite run
# takes about two minutes, and the suite inside limits the VMM to 180 s;
# past this, the outer guest itself has stopped (see run.sh).
limit=${VMDEV_NESTED_TIMEOUT:-420}

initrd="$cache/$name-outer-initramfs.cpio.gz"
"$here/mkinitramfs.sh" "$cache/kernel" nested "$initrd"
share="$cache/$name"
rm -rf "$share"
mkdir -p "$share"
stdin_param=""
if [ $interactive = 1 ] && [ ! -t 0 ]; then
    cat > "$share/stdin"
    stdin_param=vmdev.stdin=file
fi
{
    echo "#!/bin/bash"
    # The guest's init starts with a clean environment: carry the harness's
    # settings (VMDEV_GUEST_TIMEOUT and the like) over.
    for v in $(compgen -v VMDEV_); do printf 'export %s=%q\n' "$v" "${!v}"; done
    printf '%q ' "$@"
    echo
} > "$share/job.sh"

echo "nested.sh: running in a QEMU TCG guest with nested KVM (limit $limit s)"
start=$EPOCHREALTIME
# shellcheck disable=SC2054 # the commas belong to QEMU options
outer=(qemu-system-x86_64
    -machine q35,accel=tcg -cpu max -smp "$cpus" -m 3G
    -nodefaults -display none -vga none -monitor none -no-reboot
    -serial stdio
    -kernel "$cache/kernel/vmlinuz"
    -initrd "$initrd"
    -append "console=ttyS0 quiet panic=-1 vmdev.job=$share/job.sh vmdev.share=$share $stdin_param ${VMDEV_NESTED_CMDLINE:-}"
    -virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap
    -virtfs "local,path=$share,mount_tag=results,security_model=none")
if [ ${#ports[@]} -gt 0 ]; then
    outer+=(-device virtio-serial-pci)
    for i in "${!ports[@]}"; do
        outer+=(-chardev "socket,id=port$i,path=${ports[$i]#*=}"
            -device "virtserialport,chardev=port$i,name=${ports[$i]%%=*}")
    done
fi
set +e
if [ $interactive = 1 ]; then
    if [ -n "$stdin_param" ]; then "${outer[@]}" < /dev/null; else "${outer[@]}"; fi
    exit "$(cat "$share/job.sh.rc" 2>/dev/null || echo 1)"
fi

# watch_heartbeat PID: stop PID (QEMU under timeout) once the guest's
# heartbeat has not moved for the silence limit; leaves $share/silent.
watch_heartbeat() {
    local silence=${VMDEV_NESTED_SILENCE:-60} last="" beat since=$SECONDS limit=120
    while kill -0 "$1" 2>/dev/null; do
        sleep 5
        beat=$(cat "$share/heartbeat" 2>/dev/null) || beat=""
        if [ -n "$beat" ] && [ "$beat" != "$last" ]; then
            last=$beat since=$SECONDS limit=$silence
        elif [ $((SECONDS - since)) -ge "$limit" ]; then
            echo "nested.sh: no heartbeat from the outer guest for $limit s: it froze; stopping it"
            : > "$share/silent"
            kill "$1" 2>/dev/null
            return
        fi
    done
}
# In the background, so that a TERM or INT for this script (interop.sh
# stopping a VM) stops QEMU too rather than leaving it running.
timeout -k 5 "$limit" "${outer[@]}" < /dev/null \
    > >(sed -u 's/\r$//' | tee "$cache/$name-console.log") 2>&1 &
qemu_pid=$!
watch_heartbeat $qemu_pid &
watcher=$!
trap 'kill $qemu_pid $watcher 2>/dev/null' TERM INT
# wait returns early (above 128) when a trapped signal arrives.
while wait $qemu_pid; status=$?; kill -0 $qemu_pid 2>/dev/null; do :; done
trap - TERM INT
kill $watcher 2>/dev/null
wait $watcher 2>/dev/null
set -e
echo "nested.sh: outer guest $name ran $(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s, QEMU status $status"
if [ -f "$share/silent" ] || [ ! -f "$share/job.sh.rc" ]; then
    echo "nested.sh: the job did not finish (see $cache/$name-console.log)"
    exit 75 # EX_TEMPFAIL: the outer guest, not a test, failed
fi
exit "$(cat "$share/job.sh.rc")"
