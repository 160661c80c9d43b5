#!/usr/bin/env python3
# layers.py SOURCE_ROOT: the library's layers, from the bottom, and the
# includes that would cross them. A public header or a source file may
# include only its own layer's headers and those below; a virtio transport
# and a virtio device never include each other (a device works on either
# transport), nor does one device another. Fails naming each include
# that goes up or sideways.
import os
import re
import sys

LAYERS = [
    ("core", {"bus", "clock", "event_loop", "irq", "log", "guest_memory",
              "resource", "state", "device_manager", "version"}),
    ("backends and platform devices", {
        "block", "io_engine", "net", "net_switch", "pci", "pci_msix", "pcie",
        "acpi_pm", "i8042", "pit", "pic", "ioapic", "rtc",
        "uart16550"}),
    ("virtio core", {"virtio", "virtio_device", "virtqueue"}),
    ("virtio transports", {"virtio_pci", "virtio_mmio"}),
    ("virtio devices", {"virtio_blk", "virtio_console", "virtio_net",
                        "virtio_rng"}),
]
# The two top layers sit side by side: neither includes the other.
SIDE_BY_SIDE = {"virtio transports", "virtio devices"}
# Where each source folder's code sits; a file's layer is its folder's
# (the longest folder that names it), and so is an internal header's.
FOLDERS = {"core": "core",
           "block": "backends and platform devices",
           "net": "backends and platform devices",
           "pci": "backends and platform devices",
           "platform": "backends and platform devices",
           "virtio/core": "virtio core",
           "virtio/transports": "virtio transports",
           "virtio/devices": "virtio devices"}
RANK = {name: i for i, (name, _) in enumerate(LAYERS)}
LAYER_OF_HEADER = {h: name for name, hs in LAYERS for h in hs}
INCLUDE = re.compile(r'^\s*#\s*include\s+[<"]([^">]+)[">]', re.M)


def layer_of_folder(folder):
    """The layer of src/FOLDER: its longest listed prefix, or None."""
    parts = folder.split("/")
    for n in range(len(parts), 0, -1):
        layer = FOLDERS.get("/".join(parts[:n]))
        if layer:
            return layer
    return None


def allowed(frm, to, same_module):
    if same_module:
        return True
    if frm in SIDE_BY_SIDE and to in SIDE_BY_SIDE:
        return False
    if RANK[to] < RANK[frm]:
        return True
    if to != frm:
        return False
    return frm not in SIDE_BY_SIDE


def main(root):
    problems = []
    checked = 0

    def check(path, layer, own):
        nonlocal checked
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for inc in INCLUDE.findall(text):
            if inc.startswith("vmdev/"):
                name = inc[len("vmdev/"):-len(".h")]
                if name == "vmdev" or name not in LAYER_OF_HEADER:
                    if name != "vmdev":
                        problems.append(f"{path}: {inc} is in no layer "
                                        "(add it to tests/api/layers.py)")
                    continue
                to = LAYER_OF_HEADER[name]
                same = name in own
            elif "/" in inc and layer_of_folder(os.path.dirname(inc)):
                to = layer_of_folder(os.path.dirname(inc))
                same = False
            else:
                continue  # the system's, or the folder's own headers
            checked += 1
            if not allowed(layer, to, same):
                problems.append(f"{path}: includes {inc} ({to}) from "
                                f"{layer}")

    include_dir = os.path.join(root, "include", "vmdev")
    for entry in sorted(os.listdir(include_dir)):
        name = entry[:-2]
        if not entry.endswith(".h") or name == "vmdev":
            continue
        if name not in LAYER_OF_HEADER:
            problems.append(f"include/vmdev/{entry} is in no layer "
                            "(add it to tests/api/layers.py)")
            continue
        check(os.path.join(include_dir, entry), LAYER_OF_HEADER[name],
              {name})
    src = os.path.join(root, "src")
    for dirpath, _, entries in sorted(os.walk(src)):
        folder = os.path.relpath(dirpath, src)
        for entry in sorted(entries):
            if not entry.endswith((".c", ".h")):
                continue
            stem = entry[:-2]
            layer = layer_of_folder(folder)
            if layer is None:
                problems.append(f"src/{folder}/{entry} is in no layer "
                                "(add its folder to tests/api/layers.py)")
                continue
            # A file may include the public header of its own module:
            # src/pci/msix.c vmdev/pci_msix.h, src/virtio/devices/net_rx.c
            # vmdev/virtio_net.h.
            module = stem.split("_")[0]
            own = {stem, f"{folder.split('/')[0]}_{stem}", f"virtio_{stem}",
                   f"virtio_{module}"}
            check(os.path.join(dirpath, entry), layer, own)
    for p in problems:
        print("FAIL", p)
    if not problems:
        print(f"ok   {checked} includes, none crossing a layer upward or "
              "sideways")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
