// What a browser on the dashboard sees and does, without a browser: a
// socket.io client over Engine.IO's HTTP long-polling transport (protocol 4),
// the transport a browser starts with and the only one the dashboard accepts
// first. It receives each widget's messages (msg-input:<widget id>) and
// presses widgets (widget-action), as the dashboard's web page does.

export interface WidgetMessage {
  payload?: unknown;
  topic?: string;
  [key: string]: unknown;
}

const SEPARATOR = "\x1e";

export class DashboardClient {
  private closed = false;
  private polling: Promise<void> = Promise.resolve();
  readonly events: Array<{ event: string; args: unknown[] }> = [];
  private connected = false;

  private constructor(private readonly endpoint: string) {}

  /** Connects to the dashboard under `base` (http://host:port/dashboard). */
  static async connect(base: string): Promise<DashboardClient> {
    const first = await fetch(`${base}/socket.io/?EIO=4&transport=polling&t=${Date.now()}`);
    if (!first.ok) throw new Error(`dashboard handshake: ${first.status} ${await first.text()}`);
    const open = (await first.text()).split(SEPARATOR)[0];
    if (!open.startsWith("0")) throw new Error(`dashboard handshake: unexpected ${open.slice(0, 80)}`);
    const { sid } = JSON.parse(open.slice(1)) as { sid: string };
    const client = new DashboardClient(`${base}/socket.io/?EIO=4&transport=polling&sid=${encodeURIComponent(sid)}`);
    await client.post("40");
    client.polling = client.poll();
    return client;
  }

  /** Messages a widget was sent, oldest first. */
  inputs(widgetId: string): WidgetMessage[] {
    return this.events.filter((e) => e.event === `msg-input:${widgetId}`).map((e) => e.args[0] as WidgetMessage);
  }

  get isConnected(): boolean {
    return this.connected;
  }

  /** Asks what a widget holds (its last message), as a page does when it opens; the answer comes to loaded(). */
  requestLoad(widgetId: string): Promise<void> {
    return this.emit("widget-load", widgetId);
  }

  /** The latest answer to requestLoad(); a widget that holds nothing is not answered. */
  loaded(widgetId: string): WidgetMessage | undefined {
    const replies = this.events.filter((e) => e.event === `widget-load:${widgetId}`);
    return replies.length ? (replies[replies.length - 1].args[0] as WidgetMessage | undefined) : undefined;
  }

  /** Presses a button (or any widget with an action), as a click does. */
  action(widgetId: string, msg: WidgetMessage = {}): Promise<void> {
    return this.emit("widget-action", widgetId, { _event: { type: "click" }, ...msg });
  }

  emit(event: string, ...args: unknown[]): Promise<void> {
    return this.post(`42${JSON.stringify([event, ...args])}`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.post("1").catch(() => undefined);
    await this.polling.catch(() => undefined);
  }

  private async post(body: string): Promise<void> {
    const res = await fetch(`${this.endpoint}&t=${Date.now()}`, { method: "POST", body, headers: { "Content-Type": "text/plain;charset=UTF-8" } });
    if (!res.ok) throw new Error(`dashboard POST ${body.slice(0, 40)}: ${res.status} ${await res.text()}`);
    await res.text();
  }

  private async poll(): Promise<void> {
    while (!this.closed) {
      let text: string;
      try {
        const res = await fetch(`${this.endpoint}&t=${Date.now()}`);
        if (!res.ok) {
          this.connected = false;
          return;
        }
        text = await res.text();
      } catch {
        this.connected = false;
        return;
      }
      for (const packet of text.split(SEPARATOR)) this.packet(packet);
    }
  }

  private packet(p: string): void {
    if (p === "2") {
      void this.post("3").catch(() => undefined);
    } else if (p === "1") {
      this.closed = true;
    } else if (p.startsWith("40")) {
      this.connected = true;
    } else if (p.startsWith("42")) {
      const [event, ...args] = JSON.parse(p.slice(2)) as [string, ...unknown[]];
      this.events.push({ event, args });
    }
  }
}
