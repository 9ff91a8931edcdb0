export * as shm from "./shm";
export * as capture from "./capture";
export * as audio from "./audio";
export { addon } from "./native";
export * as policy from "./policy";
export * as devices from "./devices";
export * as inventory from "./inventory";
