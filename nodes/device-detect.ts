// device-detect: the devices present on deploy, then add/remove/change as
// they happen, one message per physical device (docs/device-event.md).
import type { Request, Response } from "express";
import type { Node, NodeAPI, NodeDef, NodeMessage, NodeMessageInFlow, NodeStatus } from "node-red";
import { acquireDetector, compileFilter, defaultRoots, DetectorWarning, DeviceDetector, DeviceEvent, runningDetector, SharedDetector } from "../lib/devices";
import { translate, Vars } from "./i18n";
import { countUpTo999, refuseToRun } from "./status";

interface DeviceDetectDef extends NodeDef {
  subsystems: string;
  ids: string;
  match: string;
  enumerate: boolean | string;
}

// Flows may start late (a slow deploy, a subflow); if the runtime never says
// they did, the first inventory goes out after this long.
const START_FALLBACK_MS = 5000;

let hotplugLogged = false;
// One runtime listener for all nodes: many nodes each listening would trip
// EventEmitter's leak warning.
const waitingForFlows = new Set<() => void>();
let flowsStarted: { events: NodeAPI["events"]; listener: () => void } | undefined;

export = function (RED: NodeAPI): void {
  function DeviceDetectNode(this: Node, config: DeviceDetectDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const t = (key: string, vars?: Vars): string => translate(RED, `device-detect.${key}`, vars);
    const label = (ev: DeviceEvent): string => {
      if (!ev.usb) return ev.path ?? ev.id;
      const { vid, pid, port } = ev.usb;
      return t("warn.usbDevice", { name: ev.usb.product ?? ev.usb.manufacturer ?? t("warn.unnamed"), vid, pid, port });
    };

    const filter = compileFilter({ subsystems: config.subsystems, ids: config.ids, match: config.match });
    if (filter.errors.length) {
      const errors = filter.errors.join("; ");
      const text = t("errors.filter", { errors });
      refuseToRun(node, text, t("status.badFilter"));
      return;
    }

    let shared: SharedDetector;
    try {
      shared = acquireDetector();
    } catch (err) {
      const text = t("errors.start", { error: (err as Error).message });
      refuseToRun(node, text, t("status.error"));
      return;
    }
    const detector = shared.detector;
    for (const w of shared.startWarnings) node.warn(w.message);
    const enumerate = config.enumerate !== false && config.enumerate !== "false";
    const warned = new Set<string>();
    let ready = false;
    let closed = false;

    if (shared.unavailable && !hotplugLogged) {
      hotplugLogged = true;
      node.log(t("log.noHotplug", { reason: shared.unavailable }));
    }

    const matching = (): DeviceEvent[] => detector.inventory().filter((e) => filter.test(e));

    const status = (): void => {
      const list = matching();
      const issues = list.reduce((n, e) => n + e.diagnostics.length, 0);
      const vars = { count: countUpTo999(list.length), issues: countUpTo999(issues) };
      let s: NodeStatus;
      if (shared.unavailable) s = { fill: "grey", shape: "ring", text: t("status.noHotplug", vars) };
      else if (issues) s = { fill: "yellow", shape: "dot", text: t("status.issues", vars) };
      else s = { fill: "green", shape: "dot", text: t("status.devices", vars) };
      node.status(s);
    };

    // Each diagnostic is a warning once per device, not at every inventory.
    const warnDiagnostics = (ev: DeviceEvent): void => {
      for (const d of ev.diagnostics) {
        const key = `${ev.id}\0${d.code}\0${d.node ?? ""}`;
        if (warned.has(key)) continue;
        warned.add(key);
        node.warn(t("warn.diagnostic", { device: label(ev), message: d.message }));
      }
    };

    const message = (ev: DeviceEvent): NodeMessage => ({ topic: `${ev.action}/${ev.subsystem}`, payload: ev });

    /** An inventory as one message per device; msg.parts lets a join node make it an array. */
    const sendInventory = (send: (msg: NodeMessage) => void, msgid?: string): number => {
      const list = matching();
      const id = msgid ?? RED.util.generateId();
      list.forEach((ev, index) => {
        const msg = message(ev) as NodeMessage & { parts: object };
        msg.parts = { id, index, count: list.length, type: "array", len: 1 };
        if (msgid) msg._msgid = msgid;
        send(msg);
      });
      return list.length;
    };

    const onDevice = (ev: DeviceEvent): void => {
      if (!ready || closed || !filter.test(ev)) return;
      if (ev.action === "remove") {
        for (const k of [...warned]) if (k.startsWith(`${ev.id}\0`)) warned.delete(k);
      } else {
        warnDiagnostics(ev);
      }
      node.send(message(ev));
      status();
    };
    const onWarning = (w: DetectorWarning): void => {
      if (!closed) node.warn(w.message);
    };
    detector.on("device", onDevice);
    detector.on("warning", onWarning);

    const begin = (): void => {
      if (ready || closed) return;
      ready = true;
      clearTimeout(fallback);
      waitingForFlows.delete(begin);
      // Without hotplug, what was read at the first deploy may be old by now.
      if (!detector.hotplug) detector.resync();
      for (const ev of matching()) warnDiagnostics(ev);
      if (enumerate) sendInventory((m) => node.send(m));
      status();
    };
    // Messages sent before every node of the flow exists would be lost.
    waitingForFlows.add(begin);
    const fallback = setTimeout(begin, START_FALLBACK_MS);
    status();

    node.on("input", (msg: NodeMessageInFlow, send, done) => {
      // Without hotplug, a request is the moment to look again; differences go out as events first.
      if (!detector.hotplug) detector.resync();
      sendInventory((m) => send(m), msg._msgid);
      status();
      done();
    });

    node.on("close", (_removed: boolean, done: () => void) => {
      closed = true;
      clearTimeout(fallback);
      waitingForFlows.delete(begin);
      detector.off("device", onDevice);
      detector.off("warning", onWarning);
      shared.release();
      done();
    });
  }

  RED.nodes.registerType("device-detect", DeviceDetectNode);
  // Registering the module again (a test runtime does) replaces the listener rather than adding one.
  if (flowsStarted) flowsStarted.events.removeListener("flows:started", flowsStarted.listener);
  flowsStarted = {
    events: RED.events,
    listener: () => {
      for (const begin of [...waitingForFlows]) begin();
    },
  };
  RED.events.on("flows:started", flowsStarted.listener);

  // Device lists for editor dropdowns, in this node and others.
  RED.httpAdmin.get("/devplane/devices", RED.auth.needsPermission("device-detect.read"), (req: Request, res: Response) => {
    try {
      const wanted = typeof req.query.subsystem === "string" ? req.query.subsystem : "";
      const filter = compileFilter({ subsystems: wanted });
      if (filter.errors.length) {
        res.status(400).json({ error: filter.errors.join("; ") });
        return;
      }
      const running = runningDetector();
      if (running && !running.hotplug) running.resync();
      const events = running ? running.inventory() : new DeviceDetector(defaultRoots()).enumerate();
      res.json(events.filter((e) => filter.test(e)));
    } catch (err) {
      res.status(500).json({ error: (err as Error).message });
    }
  });
};
