export * from "./content-type";
export * from "./names";
export * from "./publisher";
export * from "./subscriber";
export { RateMeter } from "./rate";
export * from "./list";
