// One Node-RED test runtime for every node test file.
import helper from "node-red-node-test-helper";
import alsaCapture from "../../nodes/alsa-capture";
import deviceDetect from "../../nodes/device-detect";
import deviceProfile from "../../nodes/device-profile";
import deviceProfiles from "../../nodes/device-profiles";
import devplanePolicy from "../../nodes/devplane-policy";
import policyCheck from "../../nodes/policy-check";
import serialStream from "../../nodes/serial-stream";
import shmPublish from "../../nodes/shm-publish";
import shmSubscribe from "../../nodes/shm-subscribe";

helper.init(require.resolve("node-red"));

type NodeModule = (RED: unknown) => void;

export { helper };
export const shmNodes = [shmPublish, shmSubscribe] as unknown as NodeModule[];
export const detectNodes = [deviceDetect] as unknown as NodeModule[];
export const profileNodes = [deviceProfiles, deviceProfile, serialStream] as unknown as NodeModule[];
export const policyNodes = [devplanePolicy, policyCheck] as unknown as NodeModule[];
export const alsaNodes = [alsaCapture, shmPublish, shmSubscribe] as unknown as NodeModule[];
