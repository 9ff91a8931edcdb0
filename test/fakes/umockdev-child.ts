// Runs inside `umockdev-run -d RECORDING -- node umockdev-child.js`: enumerates
// the devices of umockdev's testbed with the production detector and prints
// what it found, and how the testbed was reached, as one JSON line.
//
// umockdev's preload library redirects /sys and /dev for the libc calls it
// wraps. With umockdev 0.17 and Node 20 that covers open, readlink, access
// and opendir, so attribute reads, link targets and fs.existsSync see the
// testbed; but not fs.readdirSync, which libuv serves with glibc's scandir
// (whose own opendir is internal to glibc, out of the preload's reach), nor
// fs.statSync, which libuv makes with the statx system call itself. A
// detector on /sys would find no directory entries, so when readdir is not
// redirected the detector reads the testbed's files where they are,
// $UMOCKDEV_DIR/sys, through DEVPLANE_SYSFS_ROOT's option.
import fs from "fs";
import path from "path";
import { DetectorWarning, DeviceDetector } from "../../lib/devices";

const dir = process.env.UMOCKDEV_DIR;
if (!dir) {
  process.stderr.write("UMOCKDEV_DIR is not set: run this under umockdev-run\n");
  process.exit(2);
}
const testbed = path.join(dir, "sys");

const sorted = (list: string[]) => [...list].sort();
const same = (a: () => unknown, b: () => unknown): boolean => {
  try {
    return JSON.stringify(a()) === JSON.stringify(b());
  } catch {
    return false;
  }
};
// A class link of the testbed, if it has one, to compare readlink and open by.
const classLink = (() => {
  for (const cls of fs.readdirSync(path.join(testbed, "class"))) {
    for (const name of fs.readdirSync(path.join(testbed, "class", cls))) return `class/${cls}/${name}`;
  }
  return undefined;
})();
const redirected = {
  readdir: same(
    () => sorted(fs.readdirSync("/sys/class")),
    () => sorted(fs.readdirSync(path.join(testbed, "class"))),
  ),
  opendir: same(
    () => {
      const d = fs.opendirSync("/sys/class");
      const names: string[] = [];
      for (let e = d.readSync(); e; e = d.readSync()) names.push(e.name);
      d.closeSync();
      return sorted(names);
    },
    () => sorted(fs.readdirSync(path.join(testbed, "class"))),
  ),
  access: fs.existsSync("/sys/devices") && fs.existsSync(path.join(testbed, "devices")) === fs.existsSync("/sys/devices"),
  stat: same(
    () => fs.statSync("/sys/class").ino,
    () => fs.statSync(path.join(testbed, "class")).ino,
  ),
  readlink:
    classLink !== undefined &&
    same(
      () => fs.readlinkSync(`/sys/${classLink}`),
      () => fs.readlinkSync(path.join(testbed, classLink)),
    ),
  open:
    classLink !== undefined &&
    same(
      () => fs.readFileSync(`/sys/${classLink}/uevent`, "latin1"),
      () => fs.readFileSync(path.join(testbed, classLink, "uevent"), "latin1"),
    ),
};

// The testbed has no udev database (umockdev writes a recording's udev
// properties into the uevent files); an empty one says so without a warning.
const udevData = path.join(dir, "devplane-udev-data");
fs.mkdirSync(udevData, { recursive: true });

const sysfsRoot = redirected.readdir && redirected.readlink && redirected.open ? "/sys" : testbed;
const warnings: DetectorWarning[] = [];
// Device nodes are checked through /dev, which the preload redirects for access(2).
const detector = new DeviceDetector({ sysfsRoot, udevData });
detector.on("warning", (w) => warnings.push(w));
const events = detector.enumerate();
process.stdout.write(JSON.stringify({ sysfsRoot: sysfsRoot === "/sys" ? "/sys" : "$UMOCKDEV_DIR/sys", redirected, events, warnings }) + "\n");
