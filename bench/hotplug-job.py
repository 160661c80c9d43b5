#!/usr/bin/env python3
"""hotplug-job.py --vmm VMM --kernel FILE --initrd FILE --runs N --work DIR

Runs where /dev/kvm works (inside bench/hotplug.sh's nested guest): for
vmdev-run (--api-socket, device-add) and QEMU -M q35 with a
pcie-root-port (QMP, device_add virtio-blk-pci), the time from sending the
add to the guest's line saying its new block device is there (the guest
polls for it every 5 ms: tests/guest/guest/tests/hotbench.sh), N rounds
each; the guest then releases the disk by powering its slot off and the
host waits for DEVICE_DELETED before the next round. Both guests are the
same kernel and initramfs with one vCPU and 512 MiB. Prints each round and
the medians, and the ratio.
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time


class Client:
    """JSON lines over a UNIX socket, QMP's shape: answers and events."""

    def __init__(self, path, deadline):
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        self.file = self.sock.makefile("rw")
        self.events = []

    def read(self):
        line = self.file.readline()
        if not line:
            raise EOFError("the VMM closed its socket")
        return json.loads(line)

    def execute(self, name, arguments=None):
        req = {"execute": name}
        if arguments is not None:
            req["arguments"] = arguments
        self.file.write(json.dumps(req) + "\n")
        self.file.flush()
        while True:
            reply = self.read()
            if "event" in reply:
                self.events.append(reply)
            elif "error" in reply:
                raise RuntimeError(f"{name}: {reply['error']}")
            elif "return" in reply:
                return reply["return"]

    def wait_deleted(self, device_id):
        """DEVICE_DELETED for device_id: vmdev-run names it "id", QEMU
        "device" (QEMU also sends one for the device's virtio backend,
        which names only a path)."""
        while True:
            for i, e in enumerate(self.events):
                data = e.get("data", {})
                if e["event"] == "DEVICE_DELETED" and device_id in (
                        data.get("id"), data.get("device")):
                    return self.events.pop(i)
            self.events.append(self.read())


def wait_line(path, text, deadline):
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                if text in f.read():
                    return
        except FileNotFoundError:
            pass
        time.sleep(0.001)
    raise TimeoutError(f"no '{text}' in {path}")


def one_vmm(kind, a, image):
    serial = os.path.join(a.work, kind + "-serial.log")
    sock = os.path.join(a.work, kind + ".sock")
    for f in (serial, sock):
        if os.path.exists(f):
            os.unlink(f)
    cmdline = ("console=ttyS0 quiet vmdev.test=hotbench vmdev.test_timeout=900 "
               f"vmdev.hot_runs={a.runs}")
    if kind == "vmdev-run":
        cmd = [a.vmm, "--kernel", a.kernel, "--initramfs", a.initrd,
               "--cmdline", cmdline, "--cpus", "1", "--memory", "512M",
               "--serial", "file=" + serial, "--api-socket", sock,
               "--pcie-ports", "1"]
        add = ("device-add", {"type": "disk", "path": image, "format": "raw",
                              "id": "hb", "serial": "hb"})
    else:
        cmd = ["qemu-system-x86_64", "-enable-kvm", "-cpu", "host", "-M", "q35",
               "-smp", "1", "-m", "512M", "-display", "none", "-nodefaults",
               "-no-reboot", "-serial", "file:" + serial, "-kernel", a.kernel,
               "-initrd", a.initrd, "-append", cmdline,
               "-qmp", f"unix:{sock},server=on,wait=off",
               "-device", "pcie-root-port,id=rp1,chassis=1,slot=1",
               "-blockdev", "driver=raw,node-name=d1,file.driver=file,"
                            f"file.filename={image}"]
        add = ("device_add", {"driver": "virtio-blk-pci", "drive": "d1",
                              "bus": "rp1", "id": "hb", "serial": "hb"})
    err = open(os.path.join(a.work, kind + ".err"), "w")
    vm = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=err)
    times = []
    try:
        client = Client(sock, time.monotonic() + 60)
        if kind != "vmdev-run":
            client.read()  # QMP's greeting
            client.execute("qmp_capabilities")
        wait_line(serial, "VMDEV-HOTBENCH ready", time.monotonic() + 300)
        for n in range(1, a.runs + 1):
            t0 = time.monotonic()
            client.execute(*add)
            wait_line(serial, f"VMDEV-HOTBENCH seen {n}\n",
                      time.monotonic() + 120)
            ms = (time.monotonic() - t0) * 1000
            times.append(ms)
            print(f"{kind} round {n}: {ms:.1f} ms", flush=True)
            client.wait_deleted("hb")
        client.execute("quit")
    finally:
        try:
            vm.wait(timeout=30)
        except subprocess.TimeoutExpired:
            vm.kill()
    return times


def main():
    p = argparse.ArgumentParser()
    for opt in ("--vmm", "--kernel", "--initrd", "--work"):
        p.add_argument(opt, required=True)
    p.add_argument("--runs", type=int, default=10)
    a = p.parse_args()
    os.makedirs(a.work, exist_ok=True)
    image = os.path.join(a.work, "hb.img")
    with open(image, "wb") as f:
        f.truncate(64 << 20)
    medians = {}
    for kind in ("vmdev-run", "qemu-q35"):
        medians[kind] = statistics.median(one_vmm(kind, a, image))
    for kind, m in medians.items():
        print(f"median {kind}: {m:.1f} ms")
    print(f"ratio vmdev-run/qemu: {medians['vmdev-run'] / medians['qemu-q35']:.2f}")


if __name__ == "__main__":
    sys.exit(main())
