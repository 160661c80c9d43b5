#!/bin/bash
# lifecycle.sh --vmm VMM --ctl VMDEV_CTL --kernel FILE --initrd FILE --work DIR
#
# vmdev-run as a user's shell meets it, a short boot each; one PASS/FAIL
# line per test, exit status 0 when all pass.
#   stdin: `make run`'s default guest (default-guest.sh) with its serial
#          input a pipe that holds two commands from the start, then a
#          regular file holding them: they reach the guest's shell once it
#          is up (vmdev-run feeds the UART only while the guest's driver
#          listens), their output comes back, and the guest's poweroff
#          ends the VMM with status 0.
#   stop:  SIGTERM ends a VMM whose virtio-console thread is blocked on a
#          FIFO nobody reads (the guest floods hvc0): the stop guard exits
#          after its grace period, with status 5 and a message saying why.
#   seccomp: a main, vCPU or I/O thread that makes a system call outside
#          its filter (vmdev-run's test option --seccomp-test-stray) ends
#          the process with status 1 and a message naming the thread and
#          the call. (Every other boot here and in suite.sh runs with the
#          filters on, vmdev-run's default.)
#   api:   with --api-socket, vmdev-ctl reaches the running VM: version,
#          device-list naming the machine's devices with what they own,
#          and quit, after which the VMM exits 0; the socket is 0600 and
#          gone afterwards.
# Exit status 3: a boot stopped by the nested layer's known fault (run.sh
# retries it).
set -u

vmm="" ctl="" kernel="" initrd="" work=""
while [ $# -gt 0 ]; do
    case "$1" in
    --vmm) vmm="$2"; shift 2 ;;
    --ctl) ctl="$2"; shift 2 ;;
    --kernel) kernel="$2"; shift 2 ;;
    --initrd) initrd="$2"; shift 2 ;;
    --work) work="$2"; shift 2 ;;
    *) echo "lifecycle: unknown option $1" >&2; exit 2 ;;
    esac
done
[ -n "$vmm" ] && [ -n "$ctl" ] && [ -n "$kernel" ] && [ -n "$initrd" ] && [ -n "$work" ] ||
    { echo "usage: $0 --vmm VMM --ctl VMDEV_CTL --kernel FILE --initrd FILE --work DIR" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$work"
mkdir -p "$work"

failures=0 faulted=0
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; failures=$((failures + 1)); }
# show FILE: the end of a log, for a failure.
show() { tail -n 20 "$1" | tr -d '\r' | sed 's/^/  | /'; }

# stdin. The answer is computed by the guest's shell, so the tty's echo of
# the command line does not contain it.
. "$here/default-guest.sh"
truncate -s 64M "$work/scratch.img"
default_guest "$vmm" "$kernel" "$initrd" "$work/scratch.img" "$work/hvc0.log"
printf 'echo VMDEV-PIPED-$((6 * 7))\npoweroff -f\n' > "$work/commands"
stdin_problem=""
for how in pipe file; do
    if [ $how = pipe ]; then
        cat "$work/commands" |
            timeout -k 5 150 "${vm[@]}" > "$work/stdin-$how.log" 2>&1
    else
        timeout -k 5 150 "${vm[@]}" < "$work/commands" > "$work/stdin-$how.log" 2>&1
    fi
    status=$?
    if [ $status -eq 4 ]; then
        faulted=1
        stdin_problem="the guest triple-faulted (the nested layer's fault)"
    elif ! grep -q 'VMDEV-PIPED-42' "$work/stdin-$how.log"; then
        stdin_problem="the command's output never came back from a $how (exit status $status)"
    elif [ $status -ne 0 ]; then
        stdin_problem="poweroff from a $how ended the VMM with status $status, want 0"
    else
        continue
    fi
    show "$work/stdin-$how.log"
    break
done
if [ -n "$stdin_problem" ]; then
    fail stdin "$stdin_problem"
else
    pass stdin
fi

# stop. Held open read-write, the FIFO never blocks this script; nothing
# reads it, so vmdev-run's write blocks once the pipe is full.
fifo="$work/hvc.fifo"
mkfifo "$fifo"
exec 7<>"$fifo"
"$vmm" --kernel "$kernel" --initramfs "$initrd" \
    --cmdline "console=ttyS0 quiet vmdev.test=hvcflood vmdev.test_timeout=600" \
    --cpus 2 --memory 256M --console "file=$fifo" \
    --serial "file=$work/stop-serial.log" 2> "$work/stop.err" &
pid=$!
# Until one of its threads sleeps in the pipe's write (or 120 s pass).
blocked=0
for _ in $(seq 1200); do
    kill -0 "$pid" 2>/dev/null || break
    if grep -qx pipe_write /proc/"$pid"/task/*/wchan 2>/dev/null; then
        blocked=1
        break
    fi
    sleep 0.1
done
if [ $blocked = 0 ]; then
    kill -KILL "$pid" 2>/dev/null
    wait "$pid"
    status=$?
    [ $status -eq 4 ] && faulted=1
    fail stop "no thread of vmdev-run blocked on the full FIFO (exit status $status)"
    show "$work/stop-serial.log"
else
    t0=$EPOCHREALTIME
    kill -TERM "$pid"
    # The guard's grace period is 10 s; 30 s bounds a hang.
    for _ in $(seq 300); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid"
        wait "$pid"
        fail stop "vmdev-run was still running 30 s after SIGTERM"
        show "$work/stop.err"
    else
        wait "$pid"
        status=$?
        took=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
        if [ $status -ne 5 ]; then
            fail stop "vmdev-run exited with status $status after SIGTERM, want 5"
            show "$work/stop.err"
        elif ! grep -q 'did not stop within' "$work/stop.err"; then
            fail stop "vmdev-run did not say why it left the VM unstopped"
            show "$work/stop.err"
        else
            echo "lifecycle: stop took $took s"
            pass stop
        fi
    fi
fi
exec 7>&-

# seccomp. The call is getppid, which no thread's list has.
seccomp_problem=""
for kind in main vcpu io; do
    timeout -k 5 60 "$vmm" --kernel "$kernel" --initramfs "$initrd" \
        --cmdline "console=ttyS0 quiet vmdev.test=shell" --memory 256M \
        --serial "file=$work/seccomp-serial.log" \
        --seccomp-test-stray "$kind" 2> "$work/seccomp-$kind.err" < /dev/null
    status=$?
    if [ $status -ne 1 ]; then
        seccomp_problem="a $kind thread's stray call ended vmdev-run with status $status, want 1"
    elif ! grep -q "thread $kind[0-9]* made the system call getppid" "$work/seccomp-$kind.err"; then
        seccomp_problem="no message naming the $kind thread and getppid"
    else
        continue
    fi
    show "$work/seccomp-$kind.err"
    break
done
if [ -n "$seccomp_problem" ]; then
    fail seccomp "$seccomp_problem"
else
    pass seccomp
fi

# api. The socket exists before the VM starts; the guest's shell waits
# for input that never comes while vmdev-ctl talks to the VMM.
api="$work/api.sock"
"$vmm" --kernel "$kernel" --initramfs "$initrd" \
    --cmdline "console=ttyS0 quiet vmdev.test=shell" --memory 256M --rng \
    --serial "file=$work/api-serial.log" --api-socket "$api" \
    2> "$work/api.err" < /dev/null &
pid=$!
# Until it answers (it listens before the VM starts), or 60 s pass.
answered=0
for _ in $(seq 600); do
    kill -0 "$pid" 2>/dev/null || break
    if timeout 10 "$ctl" --socket "$api" version > "$work/api-version" 2>&1; then
        answered=1
        break
    fi
    sleep 0.1
done
want_version="vmdev-run with libvmdev $(sed -n 's/^#define VMDEV_VERSION "\(.*\)"/\1/p' "$here/../../include/vmdev/version.h")"
api_problem=""
if [ $answered = 0 ]; then
    api_problem="no answer on $api within 60 s: $(cat "$work/api-version")"
elif [ "$(stat -c %a "$api")" != 600 ]; then
    api_problem="the socket's mode is $(stat -c %a "$api"), want 600"
elif [ "$(cat "$work/api-version")" != "$want_version" ]; then
    api_problem="version answered '$(cat "$work/api-version")'"
elif ! timeout 30 "$ctl" --socket "$api" device-list > "$work/api-devices" 2>&1 ||
     ! grep -E '^com1 +uart ' "$work/api-devices" | grep -q 'pio 0x3f8-0x3ff' ||
     ! grep -E '^com1 +uart ' "$work/api-devices" | grep -qw 'gsi 4' ||
     ! grep -qE '^virtio-rng0 +virtio-rng .*pci-slot' "$work/api-devices"; then
    api_problem="device-list: $(tr '\n' '|' < "$work/api-devices")"
elif ! timeout 30 "$ctl" --socket "$api" quit 2> "$work/api-quit.err"; then
    api_problem="quit: $(cat "$work/api-quit.err")"
fi
# quit (or, on a problem, a kill) ends it; 30 s bounds a hang.
[ -n "$api_problem" ] && kill -TERM "$pid" 2>/dev/null
for _ in $(seq 300); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
kill -KILL "$pid" 2>/dev/null
wait "$pid"
status=$?
if [ -z "$api_problem" ] && [ $status -ne 0 ]; then
    api_problem="after quit the VMM exited with status $status, want 0"
elif [ -z "$api_problem" ] && [ -e "$api" ]; then
    api_problem="the socket was left behind"
fi
if [ -n "$api_problem" ]; then
    [ $status -eq 4 ] && faulted=1
    fail api "$api_problem"
    show "$work/api.err"
else
    pass api
fi

if [ $failures -ne 0 ]; then
    echo "lifecycle: $failures failed"
    [ $faulted = 1 ] && [ $failures -eq 1 ] && exit 3
    exit 1
fi
echo "lifecycle: all passed"
