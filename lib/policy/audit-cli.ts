#!/usr/bin/env node
// devplane-audit: checks an audit trail written by policy-check.
// Exit status: 0 intact, 1 a record was altered, removed, reordered or cut short, 2 usage or I/O error.
import { verifyAuditFile } from "./audit";

const HELP = `Usage: devplane-audit verify <file> [--rotated] [--json]

Checks the SHA-256 chain of a devplane audit trail (JSON lines written by
policy-check) and names the first record that was altered, removed, reordered
or cut short.

  verify <file>   check <file>; its first record must link to <file>.1 when
                  that exists (a file that was never rotated starts at seq 1)
  --rotated       check the whole rotated set as one chain:
                  <file>.N ... <file>.1, then <file>
  --json          print the result as one JSON object
  -h, --help      show this help

Exit status: 0 the chain is intact, 1 it is not, 2 usage or read error.

A hash chain cannot show records removed from the end of the newest file;
compare the last seq with a copy kept elsewhere (for example the audit
messages sent over MQTT) to cover that.
`;

export async function main(argv: string[], out: (s: string) => void, err: (s: string) => void): Promise<number> {
  const args = argv.filter((a) => !a.startsWith("-"));
  const flags = new Set(argv.filter((a) => a.startsWith("-")));
  if (flags.has("-h") || flags.has("--help") || argv.length === 0 || args[0] === "help") {
    out(HELP);
    return argv.length === 0 ? 2 : 0;
  }
  const unknown = [...flags].filter((f) => !["--rotated", "--json"].includes(f));
  if (unknown.length > 0) {
    err(`devplane-audit: unknown option ${unknown[0]}\n\n${HELP}`);
    return 2;
  }
  if (args[0] !== "verify" || args.length !== 2) {
    err(`devplane-audit: expected "verify <file>"\n\n${HELP}`);
    return 2;
  }
  const file = args[1];
  let result;
  try {
    result = await verifyAuditFile(file, { rotated: flags.has("--rotated") });
  } catch (e) {
    err(`devplane-audit: cannot read ${file}: ${(e as Error).message}\n`);
    return 2;
  }
  if (flags.has("--json")) {
    out(JSON.stringify(result) + "\n");
  } else if (result.ok) {
    const files = result.files.length > 1 ? ` in ${result.files.length} files` : "";
    out(`ok: ${result.records} records${files}\n`);
  } else {
    out(`bad: ${result.message}\n(${result.records} record(s) before it checked out)\n`);
  }
  return result.ok ? 0 : 1;
}

if (require.main === module) {
  main(
    process.argv.slice(2),
    (s) => process.stdout.write(s),
    (s) => process.stderr.write(s),
  ).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`devplane-audit: ${(e as Error).stack ?? String(e)}\n`);
      process.exitCode = 2;
    },
  );
}
