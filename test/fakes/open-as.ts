// Opens a serial port once with SerialLink and prints the outcome as JSON:
// run under another uid to meet the EACCES a user outside dialout meets.
import { SerialLink } from "../../lib/serial";

const link = new SerialLink({ settings: { baudRate: 9600 }, split: { mode: "none" }, autoReconnect: false });
const finish = (result: object): void => {
  process.stdout.write(JSON.stringify(result));
  void link.close().then(() => process.exit(0));
};
link.on("failure", (err) => finish({ code: err.code, message: err.message, details: err.details }));
link.on("connected", (info) => finish({ code: "OPEN", message: `opened ${info.path}`, details: {} }));
void link.follow({ path: process.argv[2] });
setTimeout(() => finish({ code: "TIMEOUT", message: "neither opened nor failed", details: {} }), 10000).unref();
