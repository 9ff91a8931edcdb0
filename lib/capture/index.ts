export * from "./alsa";
