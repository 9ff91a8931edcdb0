// device-profiles: a config node holding user profiles, which device-profile
// nodes consult before the built-in database.
import type { Node, NodeAPI, NodeDef } from "node-red";
import { compileUserProfiles, CompiledProfile } from "../lib/profiles";
import { translate } from "./i18n";

interface DeviceProfilesDef extends NodeDef {
  profiles: unknown;
}

interface DeviceProfilesNode extends Node {
  userProfiles: CompiledProfile[];
  profileErrors: string[];
}

export = function (RED: NodeAPI): void {
  function DeviceProfiles(this: DeviceProfilesNode, config: DeviceProfilesDef): void {
    RED.nodes.createNode(this, config);
    const { profiles, errors } = compileUserProfiles(config.profiles);
    this.userProfiles = profiles;
    this.profileErrors = errors;
    for (const e of errors) {
      // A broken entry is left out; the others still apply.
      this.warn(translate(RED, "device-profiles.errors.invalid", { error: e }));
    }
  }

  RED.nodes.registerType("device-profiles", DeviceProfiles);
};
