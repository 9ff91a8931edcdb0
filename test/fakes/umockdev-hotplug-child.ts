// Runs under umockdev's preload library, started by umockdev-hotplug.py: a
// detector whose uevents come through the addon's netlink thread, whose
// socket the preload connects to the testbed, so that the uevents the test
// sends with umockdev_testbed_uevent() arrive as udevd's would. Prints
// "READY <present events>", then "EVENT <event>" for each event, as JSON;
// stops when stdin closes.
import fs from "fs";
import path from "path";
import { DeviceDetector } from "../../lib/devices";
import { NetlinkUeventSource } from "../../lib/hotplug/netlink";

const dir = process.env.UMOCKDEV_DIR;
if (!dir) {
  process.stderr.write("UMOCKDEV_DIR is not set: run this under umockdev\n");
  process.exit(2);
}
const udevData = path.join(dir, "devplane-udev-data");
fs.mkdirSync(udevData, { recursive: true });
// The kernel group: the addon then takes messages from port 0, as the
// testbed's come, whether or not this machine runs udevd.
const source = new NetlinkUeventSource("kernel");
// sysfs from the testbed's own directory (see umockdev-child.ts for why).
const detector = new DeviceDetector({ sysfsRoot: path.join(dir, "sys"), udevData, source });
detector.on("device", (e) => process.stdout.write(`EVENT ${JSON.stringify(e)}\n`));
detector.on("warning", (w) => process.stdout.write(`WARN ${JSON.stringify(w)}\n`));
const present = detector.start();
if (!detector.hotplug) {
  process.stderr.write("the uevent monitor did not start\n");
  process.exit(3);
}
process.stdout.write(`READY ${JSON.stringify(present)}\n`);
// Only keeps a broken run (uevents that never come) from hanging the test for ever.
const guard = setTimeout(() => {
  process.stderr.write("gave up waiting for the testbed's uevents\n");
  process.exit(4);
}, 30000);
process.stdin.resume();
process.stdin.on("end", () => {
  clearTimeout(guard);
  detector.stop();
  process.exit(0);
});
