// What keeps a hobbyist's device from working, found from the outside: the
// node is not openable by this user (which group to join), another process
// holds it (which one, and how to stop it), no driver took the device. No
// device is ever opened: opening a serial port resets many boards.
import fs from "fs";
import os from "os";
import path from "path";
import type { DeviceState } from "./group";
import { Diagnostic, UsbInfo } from "./model";

export interface ProcessInfo {
  pid: number;
  name: string;
}

export interface ProcessScan {
  /** Device node -> the other processes that have it open. */
  holders: Map<string, ProcessInfo[]>;
  /** Processes known to grab devices (brltty, ModemManager, gpsd), running now. */
  grabbers: ProcessInfo[];
  /** Grabbers whose open files this user may not list (they run as root). */
  hidden: Set<number>;
}

/** The host as diagnostics see it; SystemProbe reads the real one. */
export interface HostProbe {
  /** The errno code ("EACCES", "ENOENT") when this process cannot open the node for reading and writing. */
  access(node: string): string | undefined;
  /** The node's owning group, when it can be stat'ed. */
  nodeGroup(node: string): { gid: number; name: string | undefined } | undefined;
  /** This process's user name and groups. */
  user(): { name: string; gids: number[] };
  /** Members listed for a group in the group database. */
  groupMembers(group: string): string[];
  /** Which processes have these nodes open; one pass over /proc. */
  scanProcesses(nodes: Set<string>): ProcessScan;
}

const GRABBERS = new Set(["brltty", "ModemManager", "gpsd"]);

export interface SystemProbeOptions {
  /** The directory that plays /dev (tests point it at a temp dir). */
  devRoot?: string;
  procRoot?: string;
  groupFile?: string;
}

export class SystemProbe implements HostProbe {
  private readonly devRoot: string;
  private readonly procRoot: string;
  private readonly groupFile: string;

  constructor(options: SystemProbeOptions = {}) {
    this.devRoot = path.resolve(options.devRoot ?? "/dev");
    this.procRoot = path.resolve(options.procRoot ?? "/proc");
    this.groupFile = options.groupFile ?? "/etc/group";
  }

  /** "/dev/ttyACM0" under the dev root. */
  local(node: string): string {
    return node.startsWith("/dev/") ? path.join(this.devRoot, node.slice(5)) : node;
  }

  access(node: string): string | undefined {
    try {
      fs.accessSync(this.local(node), fs.constants.R_OK | fs.constants.W_OK);
      return undefined;
    } catch (err) {
      return (err as NodeJS.ErrnoException).code ?? "EIO";
    }
  }

  nodeGroup(node: string): { gid: number; name: string | undefined } | undefined {
    try {
      const gid = fs.statSync(this.local(node)).gid;
      return { gid, name: this.groups().find((g) => g.gid === gid)?.name };
    } catch {
      return undefined;
    }
  }

  user(): { name: string; gids: number[] } {
    let name: string;
    try {
      name = os.userInfo().username;
    } catch {
      name = String(process.getuid?.() ?? "this user");
    }
    const gids = new Set(process.getgroups?.() ?? []);
    const gid = process.getegid?.();
    if (gid !== undefined) gids.add(gid);
    return { name, gids: [...gids] };
  }

  groupMembers(group: string): string[] {
    return this.groups().find((g) => g.name === group)?.members ?? [];
  }

  private groups(): Array<{ name: string; gid: number; members: string[] }> {
    let text = "";
    try {
      text = fs.readFileSync(this.groupFile, "utf8");
    } catch {
      return [];
    }
    const out: Array<{ name: string; gid: number; members: string[] }> = [];
    for (const line of text.split("\n")) {
      const f = line.split(":");
      if (f.length < 4 || !/^\d+$/.test(f[2])) continue;
      out.push({ name: f[0], gid: Number(f[2]), members: f[3].split(",").filter(Boolean) });
    }
    return out;
  }

  scanProcesses(nodes: Set<string>): ProcessScan {
    const scan: ProcessScan = { holders: new Map(), grabbers: [], hidden: new Set() };
    let pids: string[];
    try {
      pids = fs.readdirSync(this.procRoot).filter((n) => /^\d+$/.test(n));
    } catch {
      return scan;
    }
    for (const p of pids) {
      const pid = Number(p);
      if (pid === process.pid) continue;
      let name: string | undefined;
      const comm = (): string => {
        if (name === undefined) {
          try {
            name = fs.readFileSync(path.join(this.procRoot, p, "comm"), "utf8").trim();
          } catch {
            name = `pid ${pid}`;
          }
        }
        return name;
      };
      const grabber = GRABBERS.has(comm());
      if (grabber) scan.grabbers.push({ pid, name: comm() });
      const fdDir = path.join(this.procRoot, p, "fd");
      let fds: string[];
      try {
        fds = fs.readdirSync(fdDir);
      } catch {
        if (grabber) scan.hidden.add(pid);
        continue;
      }
      for (const fd of fds) {
        let target: string;
        try {
          target = fs.readlinkSync(path.join(fdDir, fd));
        } catch {
          continue;
        }
        if (!nodes.has(target)) continue;
        const list = scan.holders.get(target) ?? [];
        if (!list.some((h) => h.pid === pid)) list.push({ pid, name: comm() });
        scan.holders.set(target, list);
      }
    }
    return scan;
  }
}

/** USB serial bridges and the kernel module that drives them. */
const SERIAL_BRIDGES: Record<string, string> = {
  "1a86:7523": "ch341",
  "1a86:7522": "ch341",
  "1a86:5523": "ch341",
  "10c4:ea60": "cp210x",
  "10c4:ea70": "cp210x",
  "10c4:ea71": "cp210x",
  "0403:6001": "ftdi_sio",
  "0403:6010": "ftdi_sio",
  "0403:6011": "ftdi_sio",
  "0403:6014": "ftdi_sio",
  "0403:6015": "ftdi_sio",
  "067b:2303": "pl2303",
  "067b:23a3": "pl2303",
};

function moduleFor(usb: UsbInfo): string | undefined {
  const bridge = SERIAL_BRIDGES[`${usb.vid}:${usb.pid}`];
  if (bridge) return bridge;
  for (const i of usb.interfaces) {
    if (i.class === "02" && i.subclass === "02") return "cdc_acm";
    if (i.class === "0e") return "uvcvideo";
    if (i.class === "01") return "snd-usb-audio";
    if (i.class === "03") return "usbhid";
    if (i.class === "08") return "usb-storage";
  }
  return undefined;
}

function expectsSerial(usb: UsbInfo): boolean {
  return SERIAL_BRIDGES[`${usb.vid}:${usb.pid}`] !== undefined || usb.interfaces.some((i) => i.class === "02" && i.subclass === "02");
}

function describe(d: DeviceState): string {
  const u = d.usb;
  if (!u) return d.path ?? d.id;
  const name = u.product ?? u.manufacturer ?? "USB device";
  return `${name} (${u.vid}:${u.pid})`;
}

function udevMatch(d: DeviceState): string {
  return d.usb ? `ATTRS{idVendor}=="${d.usb.vid}", ATTRS{idProduct}=="${d.usb.pid}", ` : "";
}

const BRLTTY_FIX =
  "If you use no braille display: sudo systemctl stop brltty-udev.service brltty.service && sudo systemctl mask brltty-udev.service " +
  "(or sudo apt remove brltty), then unplug and replug the device.";

function busyMessage(d: DeviceState, node: string, p: ProcessInfo): string {
  switch (p.name) {
    case "ModemManager":
      return (
        `ModemManager (pid ${p.pid}) has ${node} open: it probes new serial ports for modems. Stop it with ` +
        "sudo systemctl stop ModemManager (and sudo systemctl disable ModemManager to keep it off), or keep it away from this device " +
        `with a udev rule: ${udevMatch(d)}ENV{ID_MM_DEVICE_IGNORE}="1".`
      );
    case "brltty":
      return `brltty (pid ${p.pid}), the braille display daemon, has ${node} open. ${BRLTTY_FIX}`;
    case "gpsd":
      return `gpsd (pid ${p.pid}) has ${node} open: stop it with sudo systemctl stop gpsd.socket gpsd, or take this device out of DEVICES in /etc/default/gpsd.`;
    case "agetty":
    case "getty":
      return (
        `A login console (${p.name}, pid ${p.pid}) runs on ${node}: turn it off with ` +
        `sudo systemctl disable --now serial-getty@${path.basename(node)}.service ` +
        "(on a Raspberry Pi: raspi-config, Interface Options, Serial Port, no login shell)."
      );
    default:
      return `${p.name} (pid ${p.pid}) has ${node} open: close that program, or stop it with kill ${p.pid}, before using the device here.`;
  }
}

function permissionDiagnostic(d: DeviceState, node: string, subsystem: string, probe: HostProbe): Diagnostic {
  const user = probe.user();
  const group = probe.nodeGroup(node);
  const base = { code: "permission" as const, severity: "error" as const, node };
  if (!group || group.gid === 0 || !group.name) {
    return {
      ...base,
      message:
        `Only root can open ${node}. Give it a group with a udev rule, e.g. in /etc/udev/rules.d/99-devplane.rules: ` +
        `SUBSYSTEM=="${subsystem}", ${udevMatch(d)}MODE="0660", GROUP="plugdev"; then run ` +
        `sudo udevadm control --reload && sudo udevadm trigger, and sudo usermod -aG plugdev ${user.name}.`,
    };
  }
  if (probe.groupMembers(group.name).includes(user.name) && !user.gids.includes(group.gid)) {
    return {
      ...base,
      group: group.name,
      message:
        `${user.name} is already in group ${group.name}, which owns ${node}, but Node-RED was started before that: ` +
        "restart Node-RED (or log out and back in) so that it gets the group.",
    };
  }
  return {
    ...base,
    group: group.name,
    message:
      `${user.name} cannot open ${node}, which belongs to group ${group.name}: run sudo usermod -aG ${group.name} ${user.name}, ` +
      "then restart Node-RED (log out and back in if you start it by hand).",
  };
}

/**
 * Diagnostics for each device, in order. One pass over /proc serves all the
 * devices given, which is why they are diagnosed together.
 */
export function diagnose(devices: DeviceState[], probe: HostProbe): Diagnostic[][] {
  const watched = new Set<string>();
  for (const d of devices) {
    for (const n of [...d.nodes.tty, ...d.nodes.video, ...d.nodes.hidraw]) watched.add(n);
    if (d.usb?.interfaces.some((i) => i.driver === "usbfs") && d.properties.DEVNAME) watched.add(d.properties.DEVNAME);
  }
  const needScan = watched.size > 0 || devices.some((d) => d.usb && !d.nodes.tty.length && expectsSerial(d.usb));
  const scan: ProcessScan = needScan ? probe.scanProcesses(watched) : { holders: new Map(), grabbers: [], hidden: new Set() };
  return devices.map((d) => diagnoseOne(d, probe, scan));
}

function diagnoseOne(d: DeviceState, probe: HostProbe, scan: ProcessScan): Diagnostic[] {
  const out: Diagnostic[] = [];
  const checks: Array<[string, string]> = [
    ...d.nodes.tty.map((n): [string, string] => [n, "tty"]),
    ...d.nodes.video.map((n): [string, string] => [n, "video4linux"]),
    ...d.nodes.audio.filter((a) => a.capture).map((a): [string, string] => [a.path, "sound"]),
    ...d.nodes.hidraw.map((n): [string, string] => [n, "hidraw"]),
  ];
  for (const [node, subsystem] of checks) {
    const err = probe.access(node);
    if (err === undefined) continue;
    if (err === "ENOENT") {
      out.push({
        code: "missing-node",
        severity: "error",
        node,
        message:
          `The kernel created ${node} but it does not exist here: in a container, pass it in (docker run --device=${node} ...); ` +
          "otherwise check that /dev is a devtmpfs and that udev is not renaming it.",
      });
    } else if (err === "EACCES" || err === "EPERM" || err === "EROFS") {
      out.push(permissionDiagnostic(d, node, subsystem, probe));
    }
  }

  for (const node of [...d.nodes.tty, ...d.nodes.video, ...d.nodes.hidraw]) {
    for (const p of scan.holders.get(node) ?? []) {
      out.push({ code: "busy", severity: "error", node, process: p, message: busyMessage(d, node, p) });
    }
  }

  const mm = scan.grabbers.find((g) => g.name === "ModemManager" && scan.hidden.has(g.pid));
  if (mm) {
    for (const node of d.nodes.tty.filter((n) => /\/tty(ACM|USB)\d+$/.test(n) && !scan.holders.has(n))) {
      out.push({
        code: "may-be-busy",
        severity: "warning",
        node,
        process: mm,
        message:
          `ModemManager is running (pid ${mm.pid}) and probes new serial ports for a few seconds after they appear, which can make ` +
          `${node} busy and reset boards. Stop it (sudo systemctl stop ModemManager) or keep it away from this device with a udev rule: ` +
          `${udevMatch(d)}ENV{ID_MM_DEVICE_IGNORE}="1".`,
      });
    }
  }

  const usb = d.usb;
  if (usb && d.blocked) {
    out.push({
      code: "blocked",
      severity: "warning",
      message:
        `${describe(d)} is not authorized (authorized=0), so the kernel does not use it: USBGuard or a rule blocks it. ` +
        `If it should work, allow it: sudo usbguard allow-device with its number from usbguard list-devices, or echo 1 | sudo tee ${d.syspath}/authorized.`,
    });
  } else if (usb && usb.interfaces.length) {
    const functional = usb.interfaces.filter((i) => i.class !== "09");
    const claimed = functional.find((i) => i.driver === "usbfs");
    const brltty = scan.grabbers.find((g) => g.name === "brltty");
    if (claimed) {
      const holder = d.properties.DEVNAME ? scan.holders.get(d.properties.DEVNAME)?.[0] : undefined;
      if (holder?.name === "brltty" || (!holder && brltty && expectsSerial(usb))) {
        const p = holder ?? (brltty as ProcessInfo);
        out.push({ code: "brltty", severity: "error", process: p, message: `brltty (pid ${p.pid}), the braille display daemon, has taken ${describe(d)}, so no serial port appears. ${BRLTTY_FIX}` });
      } else {
        out.push({
          code: "claimed",
          severity: "error",
          ...(holder ? { process: holder } : {}),
          message: holder
            ? `${holder.name} (pid ${holder.pid}) has claimed ${describe(d)} through libusb, which detached its kernel driver: close that program to get the device back.`
            : `A program has claimed ${describe(d)} through libusb, which detached its kernel driver: close that program to get the device back.`,
        });
      }
    } else if (functional.length && functional.every((i) => i.driver === null)) {
      if (brltty && expectsSerial(usb)) {
        out.push({ code: "brltty", severity: "error", process: brltty, message: `brltty (pid ${brltty.pid}), the braille display daemon, is running and ${describe(d)} has no driver, so no serial port appears. ${BRLTTY_FIX}` });
      } else {
        const module = moduleFor(usb);
        out.push({
          code: "no-driver",
          severity: "error",
          message: module
            ? `No kernel driver is bound to ${describe(d)}: load it with sudo modprobe ${module}; if there is no such module, install your distribution's extra kernel modules (e.g. linux-modules-extra-$(uname -r)), then replug the device.`
            : `No kernel driver is bound to ${describe(d)}: a program that talks to it through libusb needs none; otherwise install the driver its maker provides, then replug the device.`,
        });
      }
    }
  }
  return out;
}
