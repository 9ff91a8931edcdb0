// One Node-RED test runtime for every node test file.
import helper from "node-red-node-test-helper";
import alsaCapture from "../../nodes/alsa-capture";
import shmPublish from "../../nodes/shm-publish";
import shmSubscribe from "../../nodes/shm-subscribe";
import deviceDetect from "../../nodes/device-detect";

helper.init(require.resolve("node-red"));

export { helper };
export const shmNodes = [shmPublish, shmSubscribe] as unknown as Array<(RED: unknown) => void>;
export const alsaNodes = [alsaCapture, shmPublish, shmSubscribe] as unknown as Array<(RED: unknown) => void>;
import deviceProfile from "../../nodes/device-profile";
import deviceProfiles from "../../nodes/device-profiles";
import serialStream from "../../nodes/serial-stream";
export const profileNodes = [deviceProfiles, deviceProfile, serialStream] as unknown as Array<(RED: unknown) => void>;
import devplanePolicy from "../../nodes/devplane-policy";
import policyCheck from "../../nodes/policy-check";
export const policyNodes = [devplanePolicy, policyCheck] as unknown as Array<(RED: unknown) => void>;
export const detectNodes = [deviceDetect] as unknown as Array<(RED: unknown) => void>;
import v4l2Capture from "../../nodes/v4l2-capture";
export const v4l2Nodes = [v4l2Capture, shmPublish, shmSubscribe] as unknown as Array<(RED: unknown) => void>;
