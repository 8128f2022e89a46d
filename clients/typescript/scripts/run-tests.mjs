#!/usr/bin/env node
// scripts/run-tests.mjs — `node --test` over the compiled tests (dist-test/test/*.test.js), named
// one by one: Node 18 and 20 search a directory argument differently, and 22 takes globs.
// Arguments go to node before the files (e.g. --test-reporter=tap).
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const dir = resolve(dirname(fileURLToPath(import.meta.url)), "..", "dist-test", "test");
const files = readdirSync(dir).filter((f) => f.endsWith(".test.js")).sort().map((f) => join(dir, f));
if (files.length === 0) {
  console.error(`no compiled tests in ${dir}: run \`npm run build:test\` first`);
  process.exit(1);
}
const r = spawnSync(process.execPath, ["--test", ...process.argv.slice(2), ...files], { stdio: "inherit" });
process.exit(r.status ?? 1);
