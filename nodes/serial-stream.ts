// serial-stream: reads a serial device into messages, writes msg.payload to
// it, and follows the device by its stable id across unplug and replug.
import path from "path";
import type { Node, NodeAPI, NodeDef, NodeMessage, NodeMessageInFlow } from "node-red";
import { isDeviceEvent } from "../lib/profiles";
import type { DeviceEvent } from "../lib/profiles";
import { DEFAULT_MAX_BYTES, LinkInfo, LinkState, listPorts, parseDelimiter, PortSettings, SerialError, SerialLink, SplitMode, SplitOptions } from "../lib/serial";
import { deviceFromEvent } from "../lib/policy/device";
import { checkBeforeOpen, deviceFromPath } from "../lib/policy/gate";
import type { PolicyHandle } from "../lib/policy/handle";
import { translate, Vars } from "./i18n";
import { clip, refuseToRun, STATUS_MAX } from "./status";

interface SerialStreamDef extends NodeDef {
  device: string;
  baudrate: string | number;
  databits: string | number;
  parity: string;
  stopbits: string | number;
  split: string;
  delimiter: string;
  timeout: string | number;
  length: string | number;
  output: string;
  keepDelimiter: boolean;
  addDelimiter: boolean;
  reconnect: boolean;
  /** optional devplane-policy config node */
  policy?: string;
}

type Obj = Record<string, unknown>;

const DEFAULT_BAUDRATE = 9600;
const DEFAULT_TIMEOUT_MS = 100;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);
}

function num(v: unknown): number | undefined {
  if (v === "" || v === null || v === undefined) return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

/** The key under serial-stream.got that names what arrived instead of something to write. */
function kindOf(v: unknown): string {
  if (v === null) return "null";
  if (v === undefined) return "nothing";
  if (Array.isArray(v)) return "array";
  return typeof v === "object" ? "object" : "other";
}

/** A payload to write, or undefined when it is none of the accepted kinds. */
function toBytes(v: unknown): Buffer | undefined {
  if (Buffer.isBuffer(v)) return v;
  if (typeof v === "string") return Buffer.from(v, "utf8");
  if (Array.isArray(v) && v.every((b) => Number.isInteger(b) && b >= 0 && b <= 255)) return Buffer.from(v as number[]);
  return undefined;
}

export = function (RED: NodeAPI): void {
  function SerialStreamNode(this: Node, config: SerialStreamDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const t = (key: string, vars?: Vars): string => translate(RED, `serial-stream.${key}`, vars);

    const nodeBaud = num(config.baudrate);
    const nodeTimeout = num(config.timeout);
    const asBuffer = config.output === "buffer";
    const wantReconnect = config.reconnect !== false;

    const settingsFor = (baud: number | undefined): PortSettings => ({
      // The node's own rate wins: the profile's is a guess, the user's is knowledge.
      baudRate: nodeBaud ?? baud ?? DEFAULT_BAUDRATE,
      dataBits: (num(config.databits) ?? 8) as PortSettings["dataBits"],
      parity: (["none", "even", "odd", "mark", "space"].includes(config.parity) ? config.parity : "none") as PortSettings["parity"],
      stopBits: (num(config.stopbits) ?? 1) as PortSettings["stopBits"],
    });

    let delimiter: Buffer | undefined;
    const splitFor = (timeout: number | undefined, bufferSize: number | undefined): SplitOptions => ({
      mode: (config.split || "delimiter") as SplitMode,
      delimiter,
      keepDelimiter: config.keepDelimiter === true,
      timeoutMs: nodeTimeout ?? timeout ?? DEFAULT_TIMEOUT_MS,
      length: num(config.length),
      maxBytes: bufferSize ?? DEFAULT_MAX_BYTES,
    });

    // A referenced policy is asked before every open: a denied device is never opened.
    const policyNode = config.policy ? (RED.nodes.getNode(config.policy) as (Node & { policy?: PolicyHandle }) | null) : null;
    const policy = policyNode?.policy;
    const lastEvent = new Map<string, DeviceEvent>();
    const admit = async (handle: PolicyHandle, path: string, target: { id?: string }): Promise<string | undefined> => {
      const ev = target.id ? lastEvent.get(target.id) : undefined;
      const device = ev ? deviceFromEvent(ev) : deviceFromPath(path, "tty");
      const { allowed, decision } = await checkBeforeOpen(handle, device);
      return allowed ? undefined : t("errors.denied", { reason: decision.reason });
    };
    if (config.policy && !policy) {
      node.error(t("errors.noPolicy"));
    }

    let link: SerialLink;
    try {
      if ((config.split || "delimiter") === "delimiter") delimiter = parseDelimiter(config.delimiter ?? "\\n");
      link = new SerialLink({
        settings: settingsFor(undefined),
        split: splitFor(undefined, undefined),
        autoReconnect: wantReconnect,
        // Fail closed: a policy that is referenced but missing opens nothing.
        admit: config.policy
          ? (path, target) => (policy ? admit(policy, path, target) : Promise.resolve(t("errors.noPolicy")))
          : undefined,
      });
    } catch (err) {
      const text = t("errors.config", { error: (err as Error).message });
      refuseToRun(node, text, t("status.badConfig"));
      return;
    }

    const deviceOf = (info: LinkInfo): Obj => {
      const d: Obj = { path: info.path ?? null };
      if (info.id) d.id = info.id;
      if (info.name) d.name = info.name;
      return d;
    };
    const topicOf = (info: { id?: string; path?: string }): string => info.id ?? info.path ?? "";

    const statusFor = (state: LinkState, info: LinkInfo, error?: SerialError): void => {
      switch (state) {
        case "idle":
          node.status({ fill: "grey", shape: "ring", text: t("status.noDevice") });
          break;
        case "waiting":
          node.status({ fill: "yellow", shape: "ring", text: t("status.waiting") });
          break;
        case "opening":
          node.status({ fill: "yellow", shape: "ring", text: t("status.opening") });
          break;
        case "open": {
          const baud = link.settings.baudRate;
          // The rate is what the user checks; the port name gives way to it.
          const port = clip(path.basename(info.path ?? ""), STATUS_MAX - 1 - String(baud).length);
          node.status({ fill: "green", shape: "dot", text: t("status.open", { port, baud }) });
          break;
        }
        case "disconnected":
          node.status({ fill: "red", shape: "ring", text: t("status.disconnected") });
          break;
        case "removed":
          node.status({ fill: "red", shape: "ring", text: t("status.removed") });
          break;
        case "error": {
          const key = error?.code === "EACCES" ? "permission" : error?.code === "EBUSY" ? "busy" : error?.code === "EPOLICY" ? "denied" : "error";
          node.status({ fill: "red", shape: "ring", text: t(`status.${key}`) });
          break;
        }
        default:
          break;
      }
    };

    const failureText = (err: SerialError): string => {
      const keys: Partial<Record<SerialError["code"], string>> = { EACCES: `errors.permission.${err.details.kind ?? "unknown"}`, EBUSY: "errors.busy", ENOTTY: "errors.notTty", ENOTCONN: "errors.notConnected", EWRITE: "errors.write" };
      const key = keys[err.code];
      return key ? t(key, err.details) : err.message;
    };

    link.on("state", (state, info) => statusFor(state, info, info.error));
    link.on("failure", (err) => node.error(failureText(err)));
    link.on("data", (frame, info) => {
      const msg: NodeMessage = {
        payload: asBuffer ? frame.data : frame.data.toString("utf8"),
        topic: topicOf(info),
        device: deviceOf(info),
        serial: { event: "data", ...(frame.overflow ? { overflow: true } : {}), ...(frame.partial ? { partial: true } : {}) },
      };
      node.send(msg);
    });
    link.on("connected", (info) => {
      node.send({ payload: "connected", topic: topicOf(info), device: deviceOf(info), serial: { event: "connected", path: info.path } } as NodeMessage);
    });
    link.on("disconnected", (d) => {
      const info = { ...link.info, path: d.path, id: d.id };
      node.send({
        payload: "disconnected",
        topic: topicOf(info),
        device: deviceOf(info),
        serial: { event: "disconnected", reason: d.reason, ...(d.error ? { error: d.error } : {}) },
      } as NodeMessage);
    });

    // After the flow has started, so that Status nodes see the first state too.
    const start = setImmediate(() => {
      statusFor("idle", link.info);
      if (config.device) void link.follow({ path: config.device, fixed: true });
    });

    const warned = new Set<string>();

    node.on("input", (msg: NodeMessageInFlow, _send, done) => {
      const m = msg as NodeMessageInFlow & { config?: unknown; profile?: unknown };
      const cfg = isObj(m.config) ? m.config : undefined;
      const profile = isObj(m.profile) ? m.profile : undefined;
      const targeting = isDeviceEvent(msg.payload) || (cfg !== undefined && typeof cfg.device === "string" && msg.payload === undefined);
      if (targeting) {
        if (profile && typeof profile.interface === "string" && !["uart", "unknown"].includes(profile.interface)) {
          // A camera or a keyboard from the same device-detect: not for this node.
          done();
          return;
        }
        const settings = settingsFor(num(profile?.baudrate));
        try {
          link.configure({
            split: splitFor(num(cfg?.timeout), num(cfg?.buffer_size)),
            autoReconnect: wantReconnect && cfg?.auto_reconnect !== false,
          });
        } catch (err) {
          done(new Error(t("errors.config", { error: (err as Error).message })));
          return;
        }
        const devicePath = typeof cfg?.device === "string" && cfg.device !== "" ? cfg.device : undefined;
        const name = typeof profile?.name === "string" ? profile.name : undefined;
        if (isDeviceEvent(msg.payload) && typeof (msg.payload as DeviceEvent).id === "string") {
          lastEvent.set((msg.payload as DeviceEvent).id as string, msg.payload as DeviceEvent);
        }
        const work = isDeviceEvent(msg.payload)
          ? link.deviceEvent(msg.payload as DeviceEvent, { path: devicePath, settings, name })
          : link.follow({ path: devicePath, name }, settings).then(() => true);
        work.then(
          (taken) => {
            const ev = msg.payload as DeviceEvent;
            if (!taken && isDeviceEvent(ev) && ev.action !== "remove" && devicePath && !warned.has(ev.id as string)) {
              warned.add(ev.id as string);
              node.warn(t("errors.ignored", { id: String(ev.id), current: topicOf(link.info) }));
            }
            done();
          },
          (err) => done(err as Error),
        );
        return;
      }
      let bytes = toBytes(msg.payload);
      if (!bytes) {
        const got = t(`got.${kindOf(msg.payload)}`, { type: typeof msg.payload });
        done(new Error(t("errors.payload", { got })));
        return;
      }
      if (config.addDelimiter === true && delimiter) bytes = Buffer.concat([bytes, delimiter]);
      link.write(bytes).then(
        () => done(),
        (err) => done(new Error(err instanceof SerialError ? failureText(err) : (err as Error).message)),
      );
    });

    node.on("close", (_removed: boolean, done: () => void) => {
      clearImmediate(start);
      link.removeAllListeners();
      // done only once the port is closed, so that the next deploy finds it unlocked.
      link.close().then(done, done);
    });
  }

  RED.nodes.registerType("serial-stream", SerialStreamNode);

  // The editor's device list.
  RED.httpAdmin.get("/serial-stream/ports", RED.auth.needsPermission("serial-stream.read"), (_req, res) => {
    listPorts().then(
      (ports) => res.json(ports),
      (err: Error) => res.status(500).json({ error: err.message }),
    );
  });
};
