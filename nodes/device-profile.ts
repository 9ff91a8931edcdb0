// device-profile: a device-detect event in, msg.profile and msg.config added,
// out of "matched" or "unknown". Never opens or probes the device.
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from "node-red";
import { DEFAULT_USB_IDS_PATHS, identify, UsbIds } from "../lib/profiles";
import type { CompiledProfile, DeviceEvent } from "../lib/profiles";
import { translate } from "./i18n";
import { clip } from "./status";

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

/** The key under device-profile.got that names what arrived instead of a device event. */
function kindOf(v: unknown): string {
  if (v === null) return "null";
  if (v === undefined) return "nothing";
  if (Array.isArray(v)) return "array";
  if (Buffer.isBuffer(v)) return "buffer";
  return typeof v === "object" ? "object" : "other";
}

export = function (RED: NodeAPI): void {
  function DeviceProfileNode(this: Node, config: DeviceProfileDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const store = config.profiles ? (RED.nodes.getNode(config.profiles) as DeviceProfilesNode | null) : null;
    if (config.profiles && !store) {
      node.warn(translate(RED, "device-profile.errors.noProfiles"));
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
        const got = translate(RED, `device-profile.got.${kindOf(msg.payload)}`, { type: typeof msg.payload });
        done(new Error(translate(RED, "device-profile.errors.notEvent", { got })));
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
          ? { fill: "green", shape: "dot", text: clip(result.profile.name) }
          : {
              fill: "grey",
              shape: "ring",
              text: translate(RED, "device-profile.status.unknown", { id: result.facts.vid ? `${result.facts.vid}:${result.facts.pid}` : "?" }),
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
