#!/usr/bin/env node
// scripts/generate.mjs — the generated part of @rankd/client, from the repository's
// api/openapi.json:
//   src/generated/openapi.ts  every path, operation and schema as TypeScript types (openapi-typescript)
//   src/generated/routes.ts   each operationId's method and path template (what the types cannot carry)
// `node scripts/generate.mjs` writes both; `--check` writes nothing and exits 1 when either committed
// file differs from what the spec generates now (the spec changed without `npm run generate`).
// Usage: node scripts/generate.mjs [--check] [--spec PATH]
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const pkg = resolve(here, "..");
const args = process.argv.slice(2);
const check = args.includes("--check");
const specArg = args.indexOf("--spec");
const spec = specArg >= 0 ? resolve(args[specArg + 1]) : resolve(pkg, "../../api/openapi.json");

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

function types() {
  const dir = mkdtempSync(join(tmpdir(), "rankd-client-gen-"));
  try {
    const out = join(dir, "openapi.ts");
    const bin = join(pkg, "node_modules", "openapi-typescript", "bin", "cli.js");
    if (!existsSync(bin)) {
      throw new Error("openapi-typescript is not installed: run `npm ci` in " + pkg);
    }
    // A field with a default is optional: the defaults of api/openapi.json are those of request
    // bodies (ttl_s, client_writes, …), which a caller may leave out.
    execFileSync(process.execPath, [bin, spec, "--default-non-nullable", "false", "-o", out],
      { stdio: ["ignore", "ignore", "inherit"] });
    return readFileSync(out, "utf8");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function routes() {
  const doc = JSON.parse(readFileSync(spec, "utf8"));
  const lines = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const m of METHODS) {
      const op = item[m];
      if (!op) continue;
      if (!op.operationId) throw new Error(`${m.toUpperCase()} ${path} has no operationId`);
      lines.push(`  ${op.operationId}: { method: "${m.toUpperCase()}", path: ${JSON.stringify(path)} },`);
    }
  }
  lines.sort();
  return [
    "/**",
    " * This file was generated from api/openapi.json by scripts/generate.mjs.",
    " * Do not make direct changes to the file: run `npm run generate`.",
    " */",
    "",
    "/** Each operation's HTTP method and path template, by operationId. */",
    "export const routes = {",
    ...lines,
    "} as const;",
    "",
  ].join("\n");
}

const files = {
  "src/generated/openapi.ts": types(),
  "src/generated/routes.ts": routes(),
};

let stale = 0;
for (const [rel, text] of Object.entries(files)) {
  const path = join(pkg, rel);
  const now = existsSync(path) ? readFileSync(path, "utf8") : null;
  if (check) {
    if (now !== text) {
      console.error(`${rel} does not match ${spec}: run \`npm run generate\` in clients/typescript and commit it`);
      stale++;
    }
  } else if (now !== text) {
    writeFileSync(path, text);
    console.error(`wrote ${rel}`);
  }
}
if (check && stale === 0) console.error("generated files match " + spec);
process.exit(stale ? 1 : 0);
