export * as shm from "./shm";
export { addon } from "./native";
