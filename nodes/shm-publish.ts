// shm-publish: each msg.payload Buffer becomes one frame in a shared-memory ring.
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from "node-red";
import { NativeError } from "../lib/native";
import { PublishError, RingPublisher } from "../lib/shm";
import { translate } from "./i18n";
import { compactRate, statusTicker } from "./status";

interface ShmPublishDef extends NodeDef {
  ring: string;
  slots: string | number;
  slotSize: string | number;
  contentType: string;
  mode: string;
  keep: boolean;
}

const RETRY_MS = 2000;

interface DevplaneSettings {
  /** settings.js: the largest ring shm-publish may create, in bytes (default 1 GiB). */
  shmPublishMaxBytes?: unknown;
}

export = function (RED: NodeAPI): void {
  function ShmPublishNode(this: Node, config: ShmPublishDef): void {
    RED.nodes.createNode(this, config);
    const node = this;
    const maxRingBytes = (): number | undefined => {
      const v = (RED.settings as unknown as DevplaneSettings).shmPublishMaxBytes;
      return typeof v === "number" && v > 0 ? v : undefined;
    };
    let publisher: RingPublisher | undefined;
    let openError: Error | undefined;
    let retry: NodeJS.Timeout | undefined;
    let closed = false;

    const errorKeys: Record<string, string> = {
      ENOTBUFFER: "shm-publish.errors.notBuffer",
      ETOOBIG: "shm-publish.errors.tooLarge",
      EMETA: "shm-publish.errors.metaTooLarge",
    };
    const errorText = (err: unknown): string => {
      const message = (err as Error).message;
      const key = err instanceof PublishError ? errorKeys[err.code] : undefined;
      return key ? translate(RED, key, (err as PublishError).details) : message;
    };

    const open = (): void => {
      retry = undefined;
      if (closed) return;
      try {
        publisher = new RingPublisher({
          name: config.ring,
          slots: Number(config.slots),
          slotSize: Number(config.slotSize),
          contentType: config.contentType,
          mode: config.mode,
          keep: config.keep === true,
          maxBytes: maxRingBytes(),
        });
        openError = undefined;
        node.status({ fill: "green", shape: "dot", text: translate(RED, "shm-publish.status.ready") });
      } catch (err) {
        const e = err as NativeError;
        const vars = { ring: String(config.ring), error: e.message };
        openError = new Error(translate(RED, "shm-publish.errors.open", vars));
        node.error(openError.message);
        node.status({ fill: "red", shape: "ring", text: translate(RED, "shm-publish.status.error") });
        // A live writer elsewhere may go away; then this node takes the ring over.
        if (e.code === "EBUSY") retry = setTimeout(open, RETRY_MS);
      }
    };
    open();

    const ticker = statusTicker(() => {
      if (!publisher) return undefined;
      const fps = publisher.fps();
      if (fps === 0 && publisher.seq === 0) return undefined;
      const vars = { fps: compactRate(fps), readers: publisher.readers().length };
      return {
        fill: "green",
        shape: "dot",
        text: translate(RED, "shm-publish.status.fps", vars),
      };
    }, node);

    node.on("input", (msg: NodeMessageInFlow, send, done) => {
      if (!publisher) {
        done(openError ?? new Error(translate(RED, "shm-publish.status.closed")));
        return;
      }
      try {
        const written = publisher.publish(msg);
        (msg as NodeMessageInFlow & { shm: unknown }).shm = written;
        send(msg);
        done();
      } catch (err) {
        done(new Error(errorText(err)));
      }
    });

    node.on("close", (_removed: boolean, done: () => void) => {
      closed = true;
      if (retry) clearTimeout(retry);
      ticker.stop();
      publisher?.close();
      publisher = undefined;
      done();
    });
  }

  RED.nodes.registerType("shm-publish", ShmPublishNode, {
    settings: { shmPublishMaxBytes: { value: 1024 * 1024 * 1024, exportable: true } },
  } as Parameters<NodeAPI["nodes"]["registerType"]>[2]);
};
