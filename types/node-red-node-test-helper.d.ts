declare module "node-red-node-test-helper" {
  import type { Node } from "node-red";


  type NodeModule = (RED: unknown) => void;
  type FlowNode = Record<string, unknown> & { id: string; type: string };

  interface Helper {
    init(nodeRedPath: string, userSettings?: Record<string, unknown>): void;
    load(nodes: NodeModule | NodeModule[], flow: FlowNode[], credentials?: object): Promise<void>;
    unload(): Promise<void>;
    getNode(id: string): Node & { receive(msg: object): void };
    startServer(done?: () => void): Promise<void>;
    stopServer(done?: () => void): Promise<void>;
    clearFlows(): Promise<void>;
    setFlows(flow: FlowNode[], type?: string): Promise<void>;
    request(): {
      get(path: string): PromiseLike<{ status: number; body: Record<string, unknown> }>;
      post(path: string): { send(body: object): PromiseLike<{ status: number; body: Record<string, unknown> }> };
    };
    log(): unknown;
  }
  const helper: Helper;
  export = helper;
}
