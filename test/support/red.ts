// One Node-RED test runtime for every node test file.
import helper from "node-red-node-test-helper";
import shmPublish from "../../nodes/shm-publish";
import shmSubscribe from "../../nodes/shm-subscribe";

helper.init(require.resolve("node-red"));

export { helper };
export const shmNodes = [shmPublish, shmSubscribe] as unknown as Array<(RED: unknown) => void>;
