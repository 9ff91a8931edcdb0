export * as shm from "./shm";
export { addon } from "./native";
export * as policy from "./policy";
export * as devices from "./devices";
