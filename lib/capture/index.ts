export * from "./alsa";
export * as v4l2 from "./v4l2";
