// v4l2-capture: camera frames as messages (every frame, throttled, or one per
// input message), or written straight into a shared-memory ring by the
// capture thread with only metadata reaching the flow.
import type { Node, NodeAPI, NodeDef, NodeMessage, NodeMessageInFlow, NodeStatus } from "node-red";
import {
  CameraState,
  ControlValue,
  describeCamera,
  jpegStatus,
  listCameras,
  resolveDevice,
  V4l2Capture,
  V4l2CaptureError,
  VideoFrame,
} from "../lib/capture/v4l2";
import { deviceFromPath } from "../lib/policy/gate";
import { translate, Vars } from "./i18n";
import { GatedOpen, openCheckFor } from "./policy-ref";
import { compactCount, compactRate, refuseToRun, statusTicker } from "./status";

interface V4l2CaptureDef extends NodeDef {
  device: string;
  /** A devplane-policy config node asked before the camera is opened. */
  policy?: string;
  format: string;
  width: string | number;
  height: string | number;
  fps: string | number;
  buffers: string | number;
  delivery: string;
  rate: string | number;
  ring: string;
  ringSlots: string | number;
  ringMode: string;
  ringKeep: boolean;
  zeroCopy: boolean;
  metadata: boolean;
  jpeg: boolean;
  quality: string | number;
  controls: string;
  autostart: boolean;
}

type Command = "start" | "stop" | "controls";

function commandOf(payload: unknown): Command | undefined {
  if (payload === true) return "start";
  if (payload === false) return "stop";
  if (typeof payload !== "string") return undefined;
  const p = payload.trim().toLowerCase();
  return p === "start" || p === "stop" || p === "controls" ? p : undefined;
}

const STATUS_KEYS: Record<string, string> = {
  EBUSY: "busy",
  ENODEV: "notFound",
  EACCES: "noPermission",
  ENOTCAPTURE: "notCamera",
  EINVAL: "badFormat",
  ENOSPC: "bandwidth",
};

export = function (RED: NodeAPI): void {
  const read = RED.auth.needsPermission("v4l2-capture.read");
  // The editor's camera list, then one camera's formats and controls. Both
  // open devices, so they run on worker threads.
  RED.httpAdmin.get("/devplane/v4l2/cameras", read, (_req, res) => {
    listCameras().then(
      (cameras) => res.json({ cameras, jpeg: jpegStatus() }),
      (err: Error) => res.status(500).json({ error: err.message }),
    );
  });
  RED.httpAdmin.get("/devplane/v4l2/describe", read, (req, res) => {
    const device = typeof req.query.device === "string" ? req.query.device : "";
    if (!device) {
      res.status(400).json({ error: translate(RED, "v4l2-capture.errors.noDevice") });
      return;
    }
    resolveDevice(device)
      .then((path) => {
        if (!path) throw Object.assign(new Error(translate(RED, "v4l2-capture.errors.notConnected", { device })), { code: "ENODEV" });
        return describeCamera(path);
      })
      .then(
        (d) => res.json(d),
        (err: Error & { code?: string }) => res.status(err.code === "ENODEV" ? 404 : 500).json({ error: err.message, code: err.code }),
      );
  });

  function V4l2CaptureNode(this: Node, config: V4l2CaptureDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const t = (key: string, vars?: Vars): string =>
      translate(RED, `v4l2-capture.${key}`, vars);

    let capture: V4l2Capture;
    try {
      capture = new V4l2Capture({
        device: config.device,
        format: config.format,
        width: config.width,
        height: config.height,
        fps: config.fps,
        buffers: config.buffers,
        delivery: config.delivery,
        rate: config.rate,
        ring: config.ring,
        ringSlots: config.ringSlots,
        ringMode: config.ringMode,
        ringKeep: config.ringKeep === true,
        zeroCopy: config.zeroCopy !== false,
        metadata: config.metadata !== false,
        jpeg: config.jpeg === true,
        quality: config.quality,
        controls: config.controls,
      });
    } catch (err) {
      const error = (err as Error).message;
      const text = t("errors.config", { error });
      refuseToRun(node, text, t("status.error"));
      return;
    }
    const settings = capture.settings;
    const device = settings.device;
    let state: "stopped" | "starting" | "running" | "waiting" | "disconnected" | "failed" = "stopped";
    let lastError = "";
    let lastWaiting = "";

    const setStatus = (s: NodeStatus): void => node.status(s);
    const stoppedStatus = (): void => setStatus({ fill: "grey", shape: "ring", text: t("status.stopped") });

    capture.on("frame", (f: VideoFrame) => {
      if (settings.delivery === "ring") {
        node.send({ topic: "frame", payload: f.frame, frame: f.frame, shm: { name: settings.ring?.name } } as NodeMessage);
      } else {
        node.send({ topic: "frame", payload: f.payload, frame: f.frame } as NodeMessage);
      }
    });

    capture.on("state", (s: CameraState) => {
      if (s.state === "running") {
        state = "running";
        lastError = "";
        lastWaiting = "";
        setStatus({ fill: "green", shape: "dot", text: t("status.running") });
        const chosen = capture.chosen;
        node.send({
          topic: "device",
          payload: "connected",
          device: {
            name: device,
            path: s.path,
            card: s.card,
            busInfo: s.busInfo,
            format: s.format,
            width: s.width,
            height: s.height,
            stride: s.stride,
            fps: s.fps,
            memory: s.memory,
            buffers: s.buffers,
            resumed: s.resumed,
            ...(chosen ? { chosen: chosen.why } : {}),
          },
        } as NodeMessage);
        return;
      }
      if (s.state === "waiting") {
        state = "waiting";
        setStatus({ fill: "yellow", shape: "ring", text: t("status.waiting") });
        if (s.message !== lastWaiting) {
          lastWaiting = s.message;
          node.warn(s.message);
          node.send({ topic: "device", payload: "waiting", device: { name: device, message: s.message } } as NodeMessage);
        }
        return;
      }
      state = "disconnected";
      node.warn(s.message);
      setStatus({ fill: "red", shape: "ring", text: t("status.disconnected") });
      node.send({ topic: "device", payload: "disconnected", device: { name: device, message: s.message } } as NodeMessage);
    });

    capture.on("error", (err: V4l2CaptureError) => {
      if (err.message === lastError) return;
      lastError = err.message;
      if (state !== "disconnected" && state !== "running") state = "failed";
      const key = STATUS_KEYS[err.code] ?? "error";
      setStatus({ fill: "red", shape: "ring", text: t(`status.${key}`) });
      // With a message, so that a Catch node sees it.
      node.error(err.message, {
        topic: "device",
        payload: "error",
        device: { name: device, code: err.code, message: err.message },
      } as NodeMessage);
    });

    capture.on("warning", (message: string) => node.warn(message));

    // A referenced policy decides before the camera is opened; a denied camera never is.
    const gate = new GatedOpen(
      openCheckFor(RED, config.policy, {
        missing: t("errors.noPolicy"),
        denied: (reason) => t("errors.denied", { device, reason }),
      }),
      () => deviceFromPath(device, "video4linux"),
    );
    const start = (): void => {
      if (capture.running || gate.checking) return;
      state = "starting";
      setStatus({ fill: "yellow", shape: "ring", text: t("status.starting") });
      gate.request({
        open: () => capture.start(),
        denied: (text) => {
          state = "failed";
          setStatus({ fill: "red", shape: "ring", text: t("status.denied") });
          node.error(text);
        },
        failed: (err) => {
          state = "failed";
          setStatus({ fill: "red", shape: "ring", text: t("status.error") });
          node.error(err.message);
        },
      });
    };

    const stop = (): void => {
      if (gate.checking) {
        gate.cancel();
        state = "stopped";
        stoppedStatus();
        return;
      }
      if (!capture.running) return;
      capture.stop();
      state = "stopped";
      stoppedStatus();
    };

    let lastCount = -1;
    let lastAt = 0;
    const ticker = statusTicker(() => {
      if (state !== "running") return undefined;
      const stats = capture.stats();
      if (!stats) return undefined;
      const count = settings.delivery === "ring" ? stats.ringFrames : (stats.captured ?? stats.frames);
      const now = Date.now();
      const previous = lastCount;
      const since = now - lastAt;
      lastCount = count;
      lastAt = now;
      if (previous < 0 || since <= 0) return undefined;
      const fps = ((count - previous) * 1000) / since;
      const lost = stats.lost + stats.dropped;
      const vars = { fps: compactRate(fps), lost: compactCount(lost) };
      if (lost > 0) {
        return { fill: "yellow", shape: "dot", text: t("status.fpsLost", vars) };
      }
      return { fill: "green", shape: "dot", text: t("status.fps", vars) };
    }, node);

    if (config.autostart !== false) start();
    else stoppedStatus();

    const controlsError = (failures: Array<{ message?: string; name: string }>): Error =>
      new Error(failures.map((f) => f.message ?? f.name).join("; "));

    node.on("input", (msg: NodeMessageInFlow, send, done) => {
      const m = msg as NodeMessageInFlow & { controls?: unknown };
      if (m.controls !== undefined) {
        if (!m.controls || typeof m.controls !== "object" || Array.isArray(m.controls)) {
          done(new Error(t("errors.controls")));
          return;
        }
        const values = m.controls as Record<string, ControlValue>;
        capture.setControls(values).then(
          (r) => {
            send({ ...msg, topic: "controls", payload: r.results, applied: r.applied } as NodeMessage);
            const failures = r.results.filter((x) => !x.ok);
            if (failures.length) done(controlsError(failures));
            else done();
          },
          (err: Error) => done(err),
        );
        return;
      }
      const command = commandOf(msg.payload);
      if (command === "start") {
        start();
        done();
        return;
      }
      if (command === "stop") {
        stop();
        done();
        return;
      }
      if (command === "controls") {
        capture.listControls().then(
          (list) => {
            send({ ...msg, topic: "controls", payload: list } as NodeMessage);
            done();
          },
          (err: Error) => done(err),
        );
        return;
      }
      if (settings.delivery === "snapshot") {
        if (!capture.running) {
          done(new Error(t("errors.stopped", { device })));
          return;
        }
        capture.snapshot().then(
          (f) => {
            const out = msg as NodeMessageInFlow & { frame?: unknown };
            out.payload = f.payload;
            out.frame = f.frame;
            send(out as NodeMessage);
            done();
          },
          (err: Error) => done(err),
        );
        return;
      }
      const value = JSON.stringify(msg.payload) ?? String(msg.payload);
      done(new Error(t("errors.badCommand", { value })));
    });

    node.on("close", (_removed: boolean, done: () => void) => {
      gate.cancel();
      ticker.stop();
      // Stops streaming, unmaps the buffers, closes the device and joins the
      // capture thread when this was its last user.
      capture.stop();
      capture.removeAllListeners();
      done();
    });
  }

  RED.nodes.registerType("v4l2-capture", V4l2CaptureNode);
};
