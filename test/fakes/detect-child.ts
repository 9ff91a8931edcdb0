// Enumerates a fake tree in a process of its own and prints what it found, so
// that a test running as root can see what an ordinary user would (root
// reads everything, whatever the modes say).
//
//   detect-child SYSFS UDEV_DATA DEV PROC GROUP_FILE
import { DetectorWarning, DeviceDetector, SystemProbe } from "../../lib/devices";

const [sysfsRoot, udevData, devRoot, procRoot, groupFile] = process.argv.slice(2);
const warnings: DetectorWarning[] = [];
const detector = new DeviceDetector({ sysfsRoot, udevData, devRoot, probe: new SystemProbe({ devRoot, procRoot, groupFile }) });
detector.on("warning", (w) => warnings.push(w));
const events = detector.enumerate();
process.stdout.write(JSON.stringify({ uid: process.getuid?.(), events, warnings }) + "\n");
