// A host's devices as MQTT messages, so that one broker shows the devices of
// every host: retained state per device under <base>/<host>/devices/<id>, an
// empty retained message when a device goes, Home Assistant discovery configs,
// and the host's availability as birth and last-will messages.
import os from "os";
import type { DeviceEvent, DeviceNodes } from "../devices/model";

export const DEFAULT_BASE_TOPIC = "devplane";
export const DEFAULT_DISCOVERY_PREFIX = "homeassistant";
export const ONLINE = "online";
export const OFFLINE = "offline";
const SUPPORT_URL = "https://github.com/devplane/node-red-devices";

export type Qos = 0 | 1 | 2;

/** What an mqtt out node publishes as it is: topic, payload, retain and qos from the message. */
export interface MqttMessage {
  topic: string;
  /** JSON text, or "" to delete a retained message. */
  payload: string;
  retain: boolean;
  qos: Qos;
}

export interface LwtMessage {
  topic: string;
  payload: string;
  qos: Qos;
  retain: boolean;
}

/**
 * The message Node-RED's mqtt nodes take to (re)connect with other options:
 * the broker's address stays as configured, birth, close and will name this host.
 */
export interface ConnectAction {
  action: "connect";
  broker: { force: true; birth: LwtMessage; close: LwtMessage; will: LwtMessage };
}

export interface InventoryOptions {
  /** This host's name in topics and in Home Assistant; default hostName(). */
  host?: string;
  /** First topic level; default "devplane". */
  baseTopic?: string;
  /** Publish Home Assistant discovery configs; default true. */
  discovery?: boolean;
  /** Home Assistant's discovery prefix; default "homeassistant". */
  discoveryPrefix?: string;
  /** QoS of every message; default 1, so that retained state is not lost on the way. */
  qos?: Qos;
}

/** What device-profile adds (msg.profile), as far as the inventory shows it. */
export interface ProfileSummary {
  name?: string;
  interface?: string;
  confidence?: number;
}

/** What policy-check adds (msg.policy), as far as the inventory shows it. */
export interface PolicySummary {
  decision?: string;
  rule?: string | null;
  reason?: string;
}

/** msg.parts of device-detect's inventory messages. */
export interface InventoryParts {
  id: string;
  index: number;
  count: number;
}

/** The retained payload of <base>/<host>/devices/<id>. */
export interface DeviceState {
  id: string;
  host: string;
  /** The profile's name, else the USB product or manufacturer string, else the id. */
  name: string;
  subsystem: string;
  path: string | null;
  vid: string | null;
  pid: string | null;
  manufacturer: string | null;
  product: string | null;
  serial: string | null;
  /** The USB port path ("1-1.2"), null off USB. */
  usbPort: string | null;
  nodes: DeviceNodes;
  profile?: ProfileSummary;
  policy?: PolicySummary;
  /** Codes of what keeps the device from working (docs/device-event.md). */
  diagnostics: string[];
  /** ms since epoch: first seen by this inventory. */
  since: number;
  /** ms since epoch: the event's time. */
  updated: number;
}

/** The retained payload of <base>/<host>/inventory. */
export interface InventorySummary {
  host: string;
  count: number;
  devices: string[];
  updated: number;
}

export interface InventoryInput {
  event: DeviceEvent;
  profile?: ProfileSummary;
  policy?: PolicySummary;
  /** Set on the messages of an inventory: once all have come, devices missing from it are removed. */
  parts?: InventoryParts;
}

/** $DEVPLANE_HOST when set, else the machine's host name. */
export function hostName(env: NodeJS.ProcessEnv = process.env, machine: () => string = os.hostname): string {
  const fromEnv = (env.DEVPLANE_HOST ?? "").trim();
  return fromEnv || machine().trim() || "localhost";
}

/** Text as one MQTT topic level: the separators and wildcards ("/", "+", "#") and NUL become "_". */
export function topicLevel(text: string): string {
  const s = text.replace(/[/+#]/g, "_").split(String.fromCharCode(0)).join("_");
  return s === "" ? "_" : s;
}

/** Text as a Home Assistant node or object id: anything outside A-Z a-z 0-9 _ - becomes "_". */
export function discoveryId(text: string): string {
  const s = text.replace(/[^A-Za-z0-9_-]/g, "_");
  return s === "" ? "_" : s;
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !Buffer.isBuffer(v);
}

const ACTIONS = ["present", "add", "remove", "change"];

/** Is this a device-detect event the inventory can use (an id and an action at least)? */
export function isInventoryEvent(v: unknown): v is DeviceEvent {
  return isObj(v) && typeof v.id === "string" && v.id !== "" && typeof v.action === "string" && ACTIONS.includes(v.action);
}

/** msg.parts when it is a device-detect inventory's, else undefined. */
export function inventoryParts(v: unknown): InventoryParts | undefined {
  if (!isObj(v)) return undefined;
  const { id, index, count } = v;
  if (typeof id !== "string" || !Number.isInteger(index) || !Number.isInteger(count)) return undefined;
  if ((count as number) < 1 || (index as number) < 0 || (index as number) >= (count as number)) return undefined;
  return { id, index: index as number, count: count as number };
}

function str(v: unknown): string | null {
  return typeof v === "string" && v !== "" ? v : null;
}

function nodesOf(v: unknown): DeviceNodes {
  const n = isObj(v) ? v : {};
  const strings = (x: unknown): string[] => (Array.isArray(x) ? x.filter((s): s is string => typeof s === "string") : []);
  return {
    tty: strings(n.tty),
    serialById: strings(n.serialById),
    video: strings(n.video),
    videoMetadata: strings(n.videoMetadata),
    audio: Array.isArray(n.audio) ? (n.audio.filter(isObj) as unknown as DeviceNodes["audio"]) : [],
    hidraw: strings(n.hidraw),
  };
}

function profileSummary(p: ProfileSummary | undefined): ProfileSummary | undefined {
  if (!isObj(p)) return undefined;
  const out: ProfileSummary = {};
  if (typeof p.name === "string") out.name = p.name;
  if (typeof p.interface === "string") out.interface = p.interface;
  if (typeof p.confidence === "number") out.confidence = p.confidence;
  return Object.keys(out).length ? out : undefined;
}

function policySummary(p: PolicySummary | undefined): PolicySummary | undefined {
  if (!isObj(p)) return undefined;
  const out: PolicySummary = {};
  if (typeof p.decision === "string") out.decision = p.decision;
  if (typeof p.rule === "string" || p.rule === null) out.rule = p.rule;
  if (typeof p.reason === "string") out.reason = p.reason;
  return Object.keys(out).length ? out : undefined;
}

/** The state a device's retained message holds. */
export function deviceState(input: InventoryInput, host: string, since: number): DeviceState {
  const ev = input.event;
  const usb = isObj(ev.usb) ? ev.usb : undefined;
  const profile = profileSummary(input.profile);
  const policy = policySummary(input.policy);
  const manufacturer = str(usb?.manufacturer);
  const product = str(usb?.product);
  const state: DeviceState = {
    id: ev.id,
    host,
    // A profile with no match still names the device, from usb.ids or its strings.
    name: profile?.name ?? product ?? manufacturer ?? ev.id,
    subsystem: typeof ev.subsystem === "string" ? ev.subsystem : "",
    path: str(ev.path),
    vid: str(usb?.vid),
    pid: str(usb?.pid),
    manufacturer,
    product,
    serial: str(usb?.serial),
    usbPort: str(usb?.port),
    nodes: nodesOf(ev.nodes),
    diagnostics: Array.isArray(ev.diagnostics) ? ev.diagnostics.filter(isObj).map((d) => String(d.code)) : [],
    since,
    updated: typeof ev.timestamp === "number" ? ev.timestamp : since,
  };
  if (profile) state.profile = profile;
  if (policy) state.policy = policy;
  return state;
}

/**
 * One host's inventory. Feed it device-detect events (with msg.profile and
 * msg.policy when a device-profile or policy-check is in front) and publish
 * what it returns, in order, through one connection.
 */
export class Inventory {
  readonly host: string;
  readonly baseTopic: string;
  readonly discovery: boolean;
  readonly discoveryPrefix: string;
  readonly qos: Qos;
  /** id → ms since epoch first seen */
  private readonly known = new Map<string, number>();
  private readonly rounds = new Map<string, { count: number; ids: Set<string>; indexes: Set<number> }>();

  constructor(options: InventoryOptions = {}, private readonly clock: () => number = Date.now) {
    this.host = (options.host ?? "").trim() || hostName();
    this.baseTopic = (options.baseTopic ?? "").trim().replace(/\/+$/, "") || DEFAULT_BASE_TOPIC;
    if (/[+#]/.test(this.baseTopic)) throw new RangeError(`the topic "${this.baseTopic}" has a wildcard (+ or #); a published topic cannot`);
    this.discovery = options.discovery !== false;
    this.discoveryPrefix = (options.discoveryPrefix ?? "").trim().replace(/\/+$/, "") || DEFAULT_DISCOVERY_PREFIX;
    if (/[+#]/.test(this.discoveryPrefix)) throw new RangeError(`the discovery prefix "${this.discoveryPrefix}" has a wildcard (+ or #)`);
    this.qos = options.qos ?? 1;
  }

  /** <base>/<host> */
  get hostTopic(): string {
    return `${this.baseTopic}/${topicLevel(this.host)}`;
  }

  /** <base>/<host>/status: "online" or "offline", retained. */
  get statusTopic(): string {
    return `${this.hostTopic}/status`;
  }

  /** <base>/<host>/inventory: the summary, retained. */
  get summaryTopic(): string {
    return `${this.hostTopic}/inventory`;
  }

  stateTopic(id: string): string {
    return `${this.hostTopic}/devices/${topicLevel(id)}`;
  }

  /** Home Assistant's node id for this host: devplane_<host>. */
  get nodeId(): string {
    return discoveryId(`devplane_${this.host}`);
  }

  discoveryTopic(component: "sensor" | "binary_sensor", objectId: string): string {
    return `${this.discoveryPrefix}/${component}/${this.nodeId}/${discoveryId(objectId)}/config`;
  }

  /** Ids of the devices present, in the order first seen. */
  devices(): string[] {
    return [...this.known.keys()];
  }

  /** Forgets every device, as if nothing had been published. */
  reset(): void {
    this.known.clear();
    this.rounds.clear();
  }

  /** Birth, close and last will on <base>/<host>/status, for the broker connection. */
  connectAction(): ConnectAction {
    const lwt = (payload: string): LwtMessage => ({ topic: this.statusTopic, payload, qos: this.qos, retain: true });
    return { action: "connect", broker: { force: true, birth: lwt(ONLINE), close: lwt(OFFLINE), will: lwt(OFFLINE) } };
  }

  /** What one device event changes on the broker. */
  update(input: InventoryInput): MqttMessage[] {
    const ev = input.event;
    const out: MqttMessage[] = [];
    if (ev.action === "remove") {
      out.push(...this.removal(ev.id));
      out.push(this.summary());
      return out;
    }
    const since = this.known.get(ev.id) ?? this.clock();
    this.known.set(ev.id, since);
    out.push(...this.present(deviceState(input, this.host, since)));
    const parts = input.parts;
    if (ev.action === "present" && parts) {
      const done = this.roundStep(parts, ev.id);
      if (done) {
        for (const id of [...this.known.keys()]) if (!done.has(id)) out.push(...this.removal(id));
        out.push(...this.hostMessages(), this.summary());
      }
    } else {
      out.push(this.summary());
    }
    return out;
  }

  /** Discovery configs for the host itself: its availability and its device count. */
  hostMessages(): MqttMessage[] {
    if (!this.discovery) return [];
    const device = this.hostDevice();
    return [
      this.json(this.discoveryTopic("binary_sensor", "status"), {
        name: "Status",
        unique_id: `${this.nodeId}_status`,
        state_topic: this.statusTopic,
        payload_on: ONLINE,
        payload_off: OFFLINE,
        device_class: "connectivity",
        device,
        origin: this.origin(),
      }),
      this.json(this.discoveryTopic("sensor", "devices"), {
        name: "Devices",
        unique_id: `${this.nodeId}_devices`,
        state_topic: this.summaryTopic,
        value_template: "{{ value_json.count }}",
        json_attributes_topic: this.summaryTopic,
        availability_topic: this.statusTopic,
        payload_available: ONLINE,
        payload_not_available: OFFLINE,
        icon: "mdi:usb",
        device,
        origin: this.origin(),
      }),
    ];
  }

  private roundStep(parts: InventoryParts, id: string): Set<string> | undefined {
    let round = this.rounds.get(parts.id);
    if (!round) {
      round = { count: parts.count, ids: new Set(), indexes: new Set() };
      this.rounds.set(parts.id, round);
      // An inventory cut short (a redeploy mid-way) must not pile up.
      while (this.rounds.size > 8) this.rounds.delete(this.rounds.keys().next().value as string);
    }
    round.ids.add(id);
    round.indexes.add(parts.index);
    if (round.indexes.size < round.count) return undefined;
    this.rounds.delete(parts.id);
    return round.ids;
  }

  private present(state: DeviceState): MqttMessage[] {
    // State first: Home Assistant subscribes when it reads the config and then finds the retained state.
    const out = [this.json(this.stateTopic(state.id), state)];
    if (this.discovery) out.push(this.json(this.discoveryTopic("sensor", state.id), this.deviceConfig(state)));
    return out;
  }

  private removal(id: string): MqttMessage[] {
    this.known.delete(id);
    const out: MqttMessage[] = [];
    // Config first: an entity that lost its state before its config would log template errors.
    if (this.discovery) out.push(this.message(this.discoveryTopic("sensor", id), ""));
    out.push(this.message(this.stateTopic(id), ""));
    return out;
  }

  private summary(): MqttMessage {
    const devices = this.devices();
    const s: InventorySummary = { host: this.host, count: devices.length, devices, updated: this.clock() };
    return this.json(this.summaryTopic, s);
  }

  private deviceConfig(state: DeviceState): Obj {
    const objectId = discoveryId(state.id);
    const device: Obj = {
      identifiers: [`${this.nodeId}_${objectId}`],
      name: `${state.name} on ${this.host}`,
      via_device: `${this.nodeId}`,
    };
    if (state.manufacturer) device.manufacturer = state.manufacturer;
    const model = state.profile?.name ?? state.product ?? (state.vid && state.pid ? `${state.vid}:${state.pid}` : undefined);
    if (model) device.model = model;
    if (state.serial) device.serial_number = state.serial;
    return {
      name: "Device node",
      unique_id: `${this.nodeId}_${objectId}`,
      state_topic: this.stateTopic(state.id),
      value_template: "{{ value_json.path }}",
      json_attributes_topic: this.stateTopic(state.id),
      availability_topic: this.statusTopic,
      payload_available: ONLINE,
      payload_not_available: OFFLINE,
      icon: "mdi:usb-port",
      device,
      origin: this.origin(),
    };
  }

  private hostDevice(): Obj {
    return { identifiers: [this.nodeId], name: `devplane ${this.host}`, manufacturer: "devplane", model: "Node-RED device inventory" };
  }

  private origin(): Obj {
    return { name: "devplane", support_url: SUPPORT_URL };
  }

  private json(topic: string, payload: unknown): MqttMessage {
    return this.message(topic, JSON.stringify(payload));
  }

  private message(topic: string, payload: string): MqttMessage {
    return { topic, payload, retain: true, qos: this.qos };
  }
}
