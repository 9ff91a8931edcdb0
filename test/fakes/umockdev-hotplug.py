# Unplugs and replugs one device of an umockdev recording while a detector
# listens (test/fakes/umockdev-hotplug-child.ts), with umockdev's own
# uevents. Run under umockdev's preload library (LD_PRELOAD), so that the
# testbed's libudev, which sends the uevents, sees the testbed's /sys.
#
#   umockdev-hotplug.py RECORDING DEVPATH NODE CHILD_JS
#
# Relays the child's lines to stdout, then prints DONE.
import os
import subprocess
import sys

import gi

gi.require_version("UMockdev", "1.0")
from gi.repository import UMockdev  # noqa: E402

recording, devpath, node, child_js = sys.argv[1:5]
text = open(recording, encoding="utf-8").read()
testbed = UMockdev.Testbed.new()
testbed.add_from_string(text)

env = dict(os.environ, LD_PRELOAD="libumockdev-preload.so.0", UMOCKDEV_DIR=testbed.get_root_dir())
child = subprocess.Popen([node, child_js], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def expect(prefix):
    """Relays the child's lines up to the first that starts with prefix."""
    while True:
        line = child.stdout.readline()
        if not line:
            sys.exit("the child ended before " + prefix)
        sys.stdout.write(line)
        sys.stdout.flush()
        if line.startswith(prefix):
            return


# The device and everything below it, as the recording describes them.
blocks = [b for b in text.split("\n\n") if b.strip()]
mine = [b for b in blocks if b.startswith("P: " + devpath + "\n") or b.startswith("P: " + devpath + "/")]
paths = sorted((b.split("\n", 1)[0][3:] for b in mine), key=len)

expect("READY")
# Unplug: the kernel reports the children's removes first, then takes the directories away.
for p in reversed(paths):
    testbed.uevent("/sys" + p, "remove")
expect("EVENT")
# Deepest first: removing a device leaves its children's class links behind.
for p in reversed(paths):
    testbed.remove_device("/sys" + p)
# Replug: the directories come back, then the adds, the device first.
# Without the N: lines: umockdev 0.17 keeps a removed device's node
# registered, and creating it again fails its assertion.
again = ["\n".join(line for line in b.split("\n") if not line.startswith("N: ")) for b in mine]
testbed.add_from_string("\n\n".join(again) + "\n")
for p in paths:
    testbed.uevent("/sys" + p, "add")
expect("EVENT")
child.stdin.close()
child.wait()
print("DONE", flush=True)
