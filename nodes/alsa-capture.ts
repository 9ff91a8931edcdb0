// alsa-capture: microphone audio from ALSA as messages (raw or WAV), speech
// start/stop events, or chunks written straight into a shared-memory ring.
import type { Node, NodeAPI, NodeDef, NodeMessage, NodeMessageInFlow, NodeStatus } from "node-red";
import { checkOutput, checkVadOptions, EnergyVad, loudestRms, toWav, VadEvent, WavRecorder } from "../lib/audio";
import { AlsaCapture, AlsaCaptureError, AudioChunk, AudioInfo, CaptureState, listDevices } from "../lib/capture";
import { deviceFromPath } from "../lib/policy/gate";
import { translate, Vars } from "./i18n";
import { GatedOpen, openCheckFor } from "./policy-ref";
import { compactCount, refuseToRun, statusTicker } from "./status";

interface AlsaCaptureDef extends NodeDef {
  device: string;
  /** A devplane-policy config node asked before the microphone is opened. */
  policy?: string;
  rate: string | number;
  channels: string | number;
  format: string;
  chunkMs: string | number;
  batch?: string | number;
  periodFrames: string | number;
  bufferFrames: string | number;
  output: string;
  wavSeconds: string | number;
  ring: string;
  vad: boolean;
  vadStartDbfs: string | number;
  vadStopDbfs: string | number;
  vadMinSpeechMs: string | number;
  vadHangoverMs: string | number;
  autostart: boolean;
}

type Command = "start" | "stop";

function commandOf(payload: unknown): Command | undefined {
  if (payload === true) return "start";
  if (payload === false) return "stop";
  if (typeof payload !== "string") return undefined;
  const p = payload.trim().toLowerCase();
  return p === "start" || p === "stop" ? p : undefined;
}

const STATUS_KEYS: Record<string, string> = {
  ENOLIB: "noLibrary",
  EBUSY: "busy",
  ENODEV: "notFound",
  EACCES: "noPermission",
};

export = function (RED: NodeAPI): void {
  // The editor's device list. Listing runs on a worker thread.
  RED.httpAdmin.get("/devplane/alsa/devices", RED.auth.needsPermission("alsa-capture.read"), (_req, res) => {
    listDevices().then(
      (list) => res.json(list),
      (err: Error) => res.status(500).json({ error: err.message }),
    );
  });

  function AlsaCaptureNode(this: Node, config: AlsaCaptureDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const t = (key: string, vars?: Vars): string =>
      translate(RED, `alsa-capture.${key}`, vars);

    let capture: AlsaCapture;
    let output: ReturnType<typeof checkOutput>;
    let vad: EnergyVad | undefined;
    try {
      const ring = typeof config.ring === "string" ? config.ring.trim() : "";
      const useVad = config.vad === true;
      capture = new AlsaCapture({
        device: config.device,
        rate: config.rate,
        channels: config.channels,
        format: config.format,
        chunkMs: config.chunkMs,
        batch: config.batch,
        periodFrames: config.periodFrames,
        bufferFrames: config.bufferFrames,
        ring,
        // With a ring the samples go there without JavaScript; only a voice
        // detector needs the levels here.
        chunks: ring === "" || useVad,
        payload: ring === "",
        // node.send() delivers later; see lib/capture/alsa.ts.
        asyncListeners: true,
      });
      output = checkOutput(config.output, config.wavSeconds, capture.settings);
      if (useVad) {
        vad = new EnergyVad(
          checkVadOptions({
            startDbfs: config.vadStartDbfs,
            stopDbfs: config.vadStopDbfs,
            minSpeechMs: config.vadMinSpeechMs,
            hangoverMs: config.vadHangoverMs,
          }),
        );
      }
    } catch (err) {
      const error = (err as Error).message;
      const text = t("errors.config", { error });
      refuseToRun(node, text, t("status.error"));
      return;
    }

    const settings = capture.settings;
    const recorder = output.output === "wav" && output.wavSeconds > 0 ? new WavRecorder(settings, output.wavSeconds) : undefined;
    let state: "stopped" | "starting" | "running" | "disconnected" | "failed" = "stopped";
    let lastError = "";

    const setStatus = (s: NodeStatus): void => node.status(s);
    const stoppedStatus = (): void =>
      setStatus({ fill: "grey", shape: "ring", text: t("status.stopped") });

    const speechMessage = (ev: VadEvent, chunkStartMs: number, audio: AudioInfo): NodeMessage => {
      const offsetMs = ev.atMs - chunkStartMs;
      return {
        topic: "speech",
        payload: ev.type,
        speech: {
          event: ev.type,
          seq: audio.seq,
          ts: audio.ts + offsetMs,
          monotonicNs: audio.monotonicNs + Math.round(offsetMs * 1e6),
          levelDbfs: ev.levelDbfs,
          ...(ev.durationMs !== undefined ? { durationMs: ev.durationMs } : {}),
        },
      } as NodeMessage;
    };
    let lastAudio: AudioInfo | undefined;
    // Speech in progress when the audio stops (a stop command, an unplug) ends there.
    const endSpeech = (): void => {
      const ev = vad?.end();
      if (!ev || !vad || !lastAudio) return;
      node.send(speechMessage(ev, vad.clockMs - (lastAudio.frames * 1000) / lastAudio.rate, lastAudio));
    };

    capture.on("chunk", (chunk: AudioChunk) => {
      const audio = chunk.audio;
      lastAudio = audio;
      if (chunk.payload) {
        if (recorder) {
          for (const r of recorder.push(chunk)) node.send({ topic: "audio", payload: r.wav, audio: r.audio } as NodeMessage);
        } else {
          const payload = output.output === "wav" ? toWav(settings, chunk.payload) : chunk.payload;
          node.send({ topic: "audio", payload, audio } as NodeMessage);
        }
      }
      if (vad) {
        const startMs = vad.clockMs;
        const ev = vad.push(loudestRms(audio.level), (audio.frames * 1000) / audio.rate);
        if (ev) node.send(speechMessage(ev, startMs, audio));
      }
    });

    capture.on("state", (s: CaptureState) => {
      if (s.state === "running") {
        state = "running";
        lastError = "";
        setStatus({ fill: "green", shape: "dot", text: t("status.running") });
        node.send({
          topic: "device",
          payload: "connected",
          device: { name: settings.device, periodFrames: s.periodFrames, bufferFrames: s.bufferFrames, resumed: s.resumed },
        } as NodeMessage);
        return;
      }
      state = "disconnected";
      // The audio on either side of the gap does not join up.
      endSpeech();
      node.warn(s.message);
      setStatus({ fill: "red", shape: "ring", text: t("status.disconnected") });
      node.send({ topic: "device", payload: "disconnected", device: { name: settings.device, message: s.message } } as NodeMessage);
    });

    capture.on("error", (err: AlsaCaptureError) => {
      if (err.message === lastError) return;
      lastError = err.message;
      if (state !== "disconnected") state = "failed";
      const key = STATUS_KEYS[err.code] ?? "error";
      setStatus({ fill: err.code === "ENOLIB" ? "grey" : "red", shape: "ring", text: t(`status.${key}`) });
      // With a message, so that a Catch node sees it.
      node.error(err.message, {
        topic: "device",
        payload: "error",
        device: { name: settings.device, code: err.code, message: err.message },
      } as NodeMessage);
    });

    const begin = (): void => {
      try {
        capture.start();
      } catch (err) {
        state = "failed";
        setStatus({ fill: "red", shape: "ring", text: t("status.error") });
        throw err;
      }
    };
    // A referenced policy decides before the microphone is opened; a denied one never is.
    const gate = new GatedOpen(
      openCheckFor(RED, config.policy, {
        missing: t("errors.noPolicy"),
        denied: (reason) => t("errors.denied", { device: settings.device, reason }),
      }),
      () => deviceFromPath(settings.device, "sound"),
    );
    const start = (): void => {
      if (capture.running || gate.checking) return;
      state = "starting";
      setStatus({ fill: "yellow", shape: "ring", text: t("status.starting") });
      // Without a policy begin() runs here and its error reaches the caller.
      gate.request({
        open: begin,
        denied: (text) => {
          state = "failed";
          setStatus({ fill: "red", shape: "ring", text: t("status.denied") });
          node.error(text);
        },
        failed: (err) => {
          // begin() has set the status already when it was the one that threw.
          if (state !== "failed") {
            state = "failed";
            setStatus({ fill: "red", shape: "ring", text: t("status.error") });
            node.error(err.message);
            return;
          }
          node.error(t("errors.start", { device: settings.device, error: err.message }));
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
      const rest = recorder?.flush();
      if (rest) node.send({ topic: "audio", payload: rest.wav, audio: rest.audio } as NodeMessage);
      endSpeech();
      stoppedStatus();
    };

    const ticker = statusTicker(() => {
      if (state !== "running") return undefined;
      const stats = capture.stats();
      if (!stats || stats.chunks === 0) return undefined;
      const level = loudestRms({ rmsDbfs: stats.rmsDbfs }).toFixed(0);
      if (stats.overruns > 0 || stats.dropped > 0) {
        const lost = compactCount(stats.overruns + stats.dropped);
        return {
          fill: "yellow",
          shape: "dot",
          text: t("status.levelLost", { level, lost }),
        };
      }
      return { fill: "green", shape: "dot", text: t("status.level", { level }) };
    }, node);

    if (config.autostart !== false) {
      try {
        start();
      } catch (err) {
        const error = (err as Error).message;
        node.error(t("errors.start", { device: settings.device, error }));
      }
    } else {
      stoppedStatus();
    }

    node.on("input", (msg: NodeMessageInFlow, _send, done) => {
      const command = commandOf(msg.payload);
      if (!command) {
        const value = JSON.stringify(msg.payload) ?? String(msg.payload);
        done(new Error(t("errors.badCommand", { value })));
        return;
      }
      try {
        if (command === "start") start();
        else stop();
        done();
      } catch (err) {
        const error = (err as Error).message;
        done(new Error(t("errors.start", { device: settings.device, error })));
      }
    });

    node.on("close", (_removed: boolean, done: () => void) => {
      gate.cancel();
      ticker.stop();
      // Joins the capture thread when this was its last listener.
      capture.stop();
      capture.removeAllListeners();
      done();
    });
  }

  RED.nodes.registerType("alsa-capture", AlsaCaptureNode);
};
