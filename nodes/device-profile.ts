// device-profile: a device-detect event in, msg.profile and msg.config added,
// out of "matched" or "unknown". Never opens or probes the device.
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from "node-red";
import { DEFAULT_USB_IDS_PATHS, identify, UsbIds } from "../lib/profiles";
import type { CompiledProfile, DeviceEvent } from "../lib/profiles";
import { translate } from "./i18n";

interface DeviceProfileDef extends NodeDef {
  profiles: string;
}

/** What a device-profiles config node holds (nodes/device-profiles.ts). */
interface DeviceProfilesNode extends Node {
  userProfiles?: CompiledProfile[];
}

interface DevplaneSettings {
  /** settings.js: the usb.ids file(s) to read names from, instead of the usual places. */
  deviceProfileUsbIds?: unknown;
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (Buffer.isBuffer(v)) return "a Buffer";
  return typeof v === "object" ? "an object without usb, properties or nodes" : `a ${typeof v}`;
}

function short(text: string, max = 20): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

export = function (RED: NodeAPI): void {
  function DeviceProfileNode(this: Node, config: DeviceProfileDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const store = config.profiles ? (RED.nodes.getNode(config.profiles) as DeviceProfilesNode | null) : null;
    if (config.profiles && !store) {
      node.warn(translate(RED, "device-profile.errors.noProfiles", {}, "the user profiles node is missing: only built-in profiles apply"));
    }
    const setting = (RED.settings as unknown as DevplaneSettings).deviceProfileUsbIds;
    const paths =
      typeof setting === "string" && setting !== "" ? [setting] : Array.isArray(setting) && setting.every((s) => typeof s === "string") ? (setting as string[]) : DEFAULT_USB_IDS_PATHS;
    // Read on the first device that udev did not name, not at deploy.
    const usbIds = new UsbIds(paths);

    node.on("input", (msg: NodeMessageInFlow, send, done) => {
      const event = msg.payload as DeviceEvent;
      const ok = typeof event === "object" && event !== null && !Array.isArray(event) && !Buffer.isBuffer(event) && (event.usb !== undefined || event.properties !== undefined || event.nodes !== undefined);
      if (!ok) {
        const got = describe(msg.payload);
        done(new Error(translate(RED, "device-profile.errors.notEvent", { got }, `msg.payload must be a device event from device-detect (an object with usb, properties and nodes), got ${got}`)));
        return;
      }
      let result;
      try {
        result = identify(event, { user: store?.userProfiles ?? [], usbIds });
      } catch (err) {
        done(err as Error);
        return;
      }
      const out = msg as NodeMessageInFlow & { profile: unknown; config: unknown };
      out.profile = result.profile;
      out.config = result.config;
      node.status(
        result.matched
          ? { fill: "green", shape: "dot", text: short(result.profile.name) }
          : {
              fill: "grey",
              shape: "ring",
              text: translate(RED, "device-profile.status.unknown", { id: result.facts.vid ? `${result.facts.vid}:${result.facts.pid}` : "?" }, `unknown ${result.facts.vid ?? ""}:${result.facts.pid ?? ""}`),
            },
      );
      send(result.matched ? [out, null] : [null, out]);
      done();
    });
  }

  RED.nodes.registerType("device-profile", DeviceProfileNode, {
    settings: { deviceProfileUsbIds: { value: "", exportable: false } },
  } as Parameters<NodeAPI["nodes"]["registerType"]>[2]);
};
