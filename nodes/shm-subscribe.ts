// shm-subscribe: frames from a shared-memory ring become messages.
import type { Node, NodeAPI, NodeDef, NodeMessage, NodeMessageInFlow } from "node-red";
import { listRings, RingFrame, RingSubscriber } from "../lib/shm";
import { translate } from "./i18n";
import { compactCount, compactRate, refuseToRun, statusTicker } from "./status";

interface ShmSubscribeDef extends NodeDef {
  ring: string;
  delivery: string;
  rate: string | number;
}

function frameMessage(ring: string, frame: RingFrame): NodeMessage {
  const msg: NodeMessage = {
    payload: frame.data,
    shm: {
      name: ring,
      seq: frame.seq,
      missed: frame.missed,
      generation: frame.generation,
      contentType: frame.contentType,
      realtimeNs: frame.realtimeNs,
      monotonicNs: frame.monotonicNs,
      meta: frame.meta.meta,
    },
  };
  // Restore what shm-publish took from the original message.
  if (typeof frame.meta.topic === "string") msg.topic = frame.meta.topic;
  if (frame.meta.frame && typeof frame.meta.frame === "object") msg.frame = frame.meta.frame;
  if (frame.meta.audio && typeof frame.meta.audio === "object") msg.audio = frame.meta.audio;
  return msg;
}

export = function (RED: NodeAPI): void {
  function ShmSubscribeNode(this: Node, config: ShmSubscribeDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    let subscriber: RingSubscriber | undefined;
    try {
      subscriber = new RingSubscriber({
        name: config.ring,
        delivery: (config.delivery || "every") as RingSubscriber["delivery"],
        rate: config.rate === "" || config.rate === undefined ? undefined : Number(config.rate),
      });
    } catch (err) {
      const vars = { ring: String(config.ring), error: (err as Error).message };
      const text = translate(RED, "shm-subscribe.errors.open", vars);
      refuseToRun(node, text, translate(RED, "shm-subscribe.status.error"));
      return;
    }
    const sub = subscriber;

    sub.on("frame", (frame) => node.send(frameMessage(sub.name, frame)));
    sub.on("state", (state) => {
      node.status(
        state === "attached"
          ? { fill: "green", shape: "dot", text: translate(RED, "shm-subscribe.status.attached") }
          : { fill: "yellow", shape: "ring", text: translate(RED, "shm-subscribe.status.waiting") },
      );
    });
    sub.on("error", (err) => {
      node.error(translate(RED, "shm-subscribe.errors.read", { error: err.message }));
      node.status({ fill: "red", shape: "ring", text: translate(RED, "shm-subscribe.status.error") });
    });
    node.status({ fill: "yellow", shape: "ring", text: translate(RED, "shm-subscribe.status.waiting") });
    sub.start();

    const ticker = statusTicker(() => {
      if (sub.state !== "attached") return undefined;
      const { fps, missedPerSecond } = sub.stats();
      const f = compactRate(fps);
      if (missedPerSecond > 0 && sub.delivery === "every") {
        return {
          fill: "yellow",
          shape: "dot",
          text: translate(RED, "shm-subscribe.status.missed", { fps: f, missed: compactCount(missedPerSecond) }),
        };
      }
      if (fps === 0) return { fill: "green", shape: "dot", text: translate(RED, "shm-subscribe.status.attached") };
      return { fill: "green", shape: "dot", text: translate(RED, "shm-subscribe.status.fps", { fps: f }) };
    }, node);

    node.on("input", (msg: NodeMessageInFlow, send, done) => {
      const frame = sub.snapshot();
      if (!frame) {
        done(new Error(translate(RED, "shm-subscribe.errors.noFrame", { ring: sub.name })));
        return;
      }
      const out = frameMessage(sub.name, frame);
      out._msgid = msg._msgid;
      send(out);
      done();
    });

    node.on("close", (_removed: boolean, done: () => void) => {
      ticker.stop();
      sub.stop();
      sub.removeAllListeners();
      done();
    });
  }

  RED.nodes.registerType("shm-subscribe", ShmSubscribeNode);

  // The rings present, for the editor's ring list.
  RED.httpAdmin.get("/devplane/shm/rings", RED.auth.needsPermission("shm-subscribe.read"), (_req, res) => {
    res.json(listRings());
  });
};
