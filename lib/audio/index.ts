export * from "./levels";
export * from "./vad";
export * from "./wav";
