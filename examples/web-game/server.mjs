#!/usr/bin/env node
// examples/web-game/server.mjs — a stand-in for the game's own backend, the only place that holds
// rankd's write key. It serves the page (index.html, game.js, style.css), the built client
// (clients/typescript/dist as /client/), and one route of its own:
//   POST /session {"player_id"} → rankd's POST /v1/players/{player}/tokens with the write key →
//   {"token","player_id","expires_at"}: a player token the page uses to submit its own scores.
// A real backend would first check who the player is (its own login, Firebase, Steam…); this one
// takes the name the page sends. Node 18 or later, no packages.
//
// Environment: RANKD_URL (rankd's base URL, as the browser reaches it), RANKD_WRITE_KEY,
// GAME_BOARD (default "web-game"; created with "client_writes": true, see README.md),
// PORT (default 8090), HOST (default 127.0.0.1), TOKEN_TTL_S (default 3600),
// CLIENT_DIST (default ../../clients/typescript/dist).
import { createServer } from "node:http";
import { readFile } from "node:fs/promises";
import { dirname, extname, join, normalize, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const env = process.env;
const RANKD_URL = (env.RANKD_URL ?? "").replace(/\/+$/, "");
const WRITE_KEY = env.RANKD_WRITE_KEY ?? "";
const BOARD = env.GAME_BOARD ?? "web-game";
const PORT = Number(env.PORT ?? 8090);
const HOST = env.HOST ?? "127.0.0.1";
const TTL_S = Number(env.TOKEN_TTL_S ?? 3600);
const CLIENT_DIST = resolve(env.CLIENT_DIST ?? join(here, "..", "..", "clients", "typescript", "dist"));
if (!RANKD_URL || !WRITE_KEY) {
  console.error("server.mjs: set RANKD_URL and RANKD_WRITE_KEY (see README.md)");
  process.exit(2);
}

const PLAYER_ID = /^(?!\.+$)[A-Za-z0-9_.:@-]{1,64}$/; // the contract's player id (docs/api.md)
const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8", ".map": "application/json", ".json": "application/json" };
const PAGE_FILES = new Set(["/index.html", "/game.js", "/style.css"]);

function send(res, status, body, type = "application/json") {
  const data = typeof body === "string" || Buffer.isBuffer(body) ? body : JSON.stringify(body);
  res.writeHead(status, { "Content-Type": type, "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff" });
  res.end(data);
}

function error(res, status, code, message) {
  send(res, status, { error: { code, message } });
}

async function file(res, path) {
  try {
    send(res, 200, await readFile(path), TYPES[extname(path)] ?? "application/octet-stream");
  } catch {
    error(res, 404, "not_found", "no such file");
  }
}

async function body(req, limit = 4096) {
  let size = 0;
  const chunks = [];
  for await (const c of req) {
    size += c.length;
    if (size > limit) throw new Error("body too large");
    chunks.push(c);
  }
  return JSON.parse(Buffer.concat(chunks).toString("utf8") || "{}");
}

/** POST /session: mint a player token with the write key (never sent to the page). */
async function session(req, res) {
  let player;
  try {
    player = (await body(req)).player_id;
  } catch {
    return error(res, 400, "invalid_argument", "the body must be {\"player_id\": \"…\"}");
  }
  if (typeof player !== "string" || !PLAYER_ID.test(player)) {
    return error(res, 400, "invalid_argument", "player_id: 1-64 of A-Z a-z 0-9 _ . : @ -");
  }
  let r;
  try {
    r = await fetch(`${RANKD_URL}/v1/players/${encodeURIComponent(player)}/tokens`, {
      method: "POST",
      headers: { Authorization: `Bearer ${WRITE_KEY}`, "Content-Type": "application/json" },
      body: JSON.stringify({ ttl_s: TTL_S, boards: [BOARD] }),
    });
  } catch (e) {
    return error(res, 502, "unavailable", "rankd did not answer");
  }
  const answer = await r.json().catch(() => null);
  if (r.status !== 201 || !answer || typeof answer.token !== "string") {
    // rankd's error object says why (never the key); the page shows it.
    return send(res, r.status >= 400 && r.status < 600 ? r.status : 502,
      answer && answer.error ? answer : { error: { code: "internal", message: `rankd answered ${r.status}` } });
  }
  send(res, 201, { token: answer.token, player_id: answer.player_id, expires_at: answer.expires_at });
}

const server = createServer(async (req, res) => {
  const url = new URL(req.url ?? "/", "http://x");
  const path = url.pathname;
  try {
    if (req.method === "POST" && path === "/session") return await session(req, res);
    if (req.method !== "GET" && req.method !== "HEAD") return error(res, 405, "method_not_allowed", "GET or POST /session");
    if (path === "/favicon.ico") return send(res, 204, "");
    if (path === "/config.json") return send(res, 200, { rankd_url: RANKD_URL, board: BOARD });
    if (path === "/") return await file(res, join(here, "index.html"));
    if (PAGE_FILES.has(path)) return await file(res, join(here, path.slice(1)));
    if (path.startsWith("/client/")) {
      const target = normalize(join(CLIENT_DIST, path.slice("/client/".length)));
      if (!target.startsWith(CLIENT_DIST + sep) || ![".js", ".map"].includes(extname(target))) {
        return error(res, 404, "not_found", "no such file");
      }
      return await file(res, target);
    }
    error(res, 404, "not_found", "no such file");
  } catch (e) {
    console.error("server.mjs:", e instanceof Error ? e.message : e);
    if (!res.headersSent) error(res, 500, "internal", "the stand-in backend failed");
  }
});

server.listen(PORT, HOST, () => {
  const a = server.address();
  console.log(`web game on http://${HOST}:${typeof a === "object" && a ? a.port : PORT}/ (rankd ${RANKD_URL}, board ${BOARD})`);
});
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => server.close(() => process.exit(0)));
