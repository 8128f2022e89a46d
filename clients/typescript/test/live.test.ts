// Live streams (src/live.ts): the SSE parser on its own (chunks cut anywhere, CRLF/CR/LF, comments,
// multi-line data); the stream's reconnection, refusals, gone and close against a small scripted
// server of Node's own; and liveTop (and livePlayer, where the server has it) against a real rankd,
// started by tests/e2e/test_typescript_client.py (RANKD_URL, keys: see client.test.ts).
import { afterEach, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { randomUUID } from "node:crypto";

import {
  RankdClient, RankdConnectionError, RankdError, SseParser,
  type LiveEnd, type LivePlayer, type LiveStream, type LiveTop, type Schemas, type SseEvent,
} from "../src/index.js";

/** Wait until `pred()` is true (polling every 10 ms), or fail after `ms`. */
async function until(pred: () => boolean, what: string, ms = 15000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** `text` parsed when fed in the given pieces: the events, the retry values, the comments. */
function parse(pieces: string[], lastEventId = ""): { events: SseEvent[]; retries: number[]; comments: string[] } {
  const out = { events: [] as SseEvent[], retries: [] as number[], comments: [] as string[] };
  const p = new SseParser({
    onEvent: (e) => out.events.push(e),
    onRetry: (ms) => out.retries.push(ms),
    onComment: (c) => out.comments.push(c),
  }, lastEventId);
  for (const piece of pieces) p.feed(piece);
  p.end();
  return out;
}

describe("SseParser", () => {
  const stream = [
    "\ufeffretry: 2000",
    "id: w1:1.aa",
    "event: top",
    'data: {"a":1,',
    'data:  "b":2}',
    "",
    ": heartbeat",
    "",
    "data",
    "data: second line",
    "",
    "event: gone",
    "id: w1:2.bb",
    "retry: soon",
    "unknown: field",
    "data: {}",
    "",
    "event: nothing-sent",
    "id: w1:3.cc",
    "",
    "id: bad\0id",
    "data: x",
    "",
    "data: cut at the end",
  ];
  const want = {
    events: [
      { event: "top", data: '{"a":1,\n "b":2}', id: "w1:1.aa" },
      { event: "message", data: "\nsecond line", id: "w1:1.aa" },
      { event: "gone", data: "{}", id: "w1:2.bb" },
      { event: "message", data: "x", id: "w1:3.cc" },
    ],
    retries: [2000],
    comments: [" heartbeat"],
  };

  for (const [name, eol] of [["LF", "\n"], ["CRLF", "\r\n"], ["CR", "\r"]] as const) {
    test(`lines ending in ${name}, cut into chunks at every place`, () => {
      const text = stream.join(eol);
      assert.deepEqual(parse([text]), want);
      for (let i = 0; i <= text.length; i++) {
        assert.deepEqual(parse([text.slice(0, i), text.slice(i)]), want, `cut at ${i}`);
      }
      assert.deepEqual(parse([...text]), want, "one character at a time");
    });
  }

  test("mixed line ends, and a CR then LF in separate chunks is one line end", () => {
    assert.deepEqual(parse(["data: a\r", "\ndata: b\n\r", "\n"]).events, [{ event: "message", data: "a\nb", id: "" }]);
    // CR, then CR: two line ends (an empty line dispatches)
    assert.deepEqual(parse(["data: a\r", "\r"]).events, [{ event: "message", data: "a", id: "" }]);
  });

  test("the last event id starts from the one given, and a blank line without data dispatches nothing", () => {
    const r = parse(["\n\n: only comments\n\nevent: top\n\ndata: y\n\n"], "resume-1");
    assert.deepEqual(r.events, [{ event: "message", data: "y", id: "resume-1" }]);
    const p = new SseParser({ onEvent: () => {} }, "start");
    p.feed("id: next\n\n");
    assert.equal(p.lastEventId, "next");
    p.feed("id\n\n"); // an empty id resets it
    assert.equal(p.lastEventId, "");
  });

  test("only the BOM at the very start is dropped", () => {
    assert.deepEqual(parse(["", "\ufeffdata: a\n\n"]).events, [{ event: "message", data: "a", id: "" }]);
    assert.deepEqual(parse(["data: \ufeffa\n\n"]).events, [{ event: "message", data: "\ufeffa", id: "" }]);
  });
});

// ------------------------------------------------------------------------------------------------
// A scripted server: each connection is answered by the next function of the script.

type Step = (req: IncomingMessage, res: ServerResponse) => void;

class Scripted {
  readonly requests: IncomingMessage[] = [];
  private readonly server: Server;
  private readonly open = new Set<ServerResponse>();
  url = "";

  constructor(private readonly steps: Step[]) {
    this.server = createServer((req, res) => {
      this.requests.push(req);
      this.open.add(res);
      res.on("close", () => this.open.delete(res));
      const step = this.steps[this.requests.length - 1] ?? ((_, r) => { r.writeHead(500); r.end(); });
      step(req, res);
    });
  }

  async start(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this.url;
  }

  async stop(): Promise<void> {
    for (const res of this.open) res.destroy();
    this.server.closeAllConnections?.();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

function sse(res: ServerResponse, text = ""): void {
  res.writeHead(200, { "Content-Type": "text/event-stream", "Cache-Control": "no-cache" });
  res.flushHeaders();
  if (text) res.write(text);
}

const PAGE = (n: number) => JSON.stringify({ board: "b", window: "w", total: n, entries: [], next_cursor: null, prev_cursor: null });

describe("liveTop's reconnection, refusals and end (a scripted server)", () => {
  let server: Scripted | null = null;
  let stream: LiveStream | null = null;
  afterEach(async () => {
    stream?.close();
    await server?.stop();
    server = stream = null;
  });

  test("a refusal with Retry-After is retried; a stream that ends is made again with Last-Event-ID after retry:", async () => {
    server = new Scripted([
      (_, res) => { res.writeHead(503, { "Retry-After": "0", "Content-Type": "application/json" }); res.end('{"error":{"code":"unavailable","message":"full"}}'); },
      (_, res) => { sse(res, `retry: 30\nid: w:1.a\nevent: top\ndata: ${PAGE(1)}\n\n`); res.end(`: bye\n\n`); },
      (_, res) => { sse(res, `id: w:2.b\nevent: top\ndata: ${PAGE(2)}\n\n`); },
    ]);
    const client = new RankdClient({ baseUrl: await server.start(), auth: "the-key" });
    const tops: [number, string][] = [];
    const errors: [unknown, boolean, number][] = [];
    let opens = 0;
    stream = client.liveTop("b", { top: 3, rankStyle: "dense", retryMs: 5 }, {
      onTop: (p, info) => tops.push([p.total, info.id]),
      onOpen: () => { opens++; },
      onError: (e, r) => errors.push([e, r.willRetry, r.failures]),
    });
    await until(() => tops.length === 2, "two top events over two connections");
    assert.deepEqual(tops, [[1, "w:1.a"], [2, "w:2.b"]]);
    assert.equal(opens, 2);
    assert.equal(stream.lastEventId, "w:2.b");
    assert.equal(stream.state, "open");
    const [first, second, third] = server.requests;
    assert.equal(first?.url, "/v1/leaderboards/b/live?top=3&rank_style=dense");
    assert.equal(first?.headers["authorization"], "Bearer the-key");
    assert.equal(first?.headers["accept"], "text/event-stream");
    assert.equal(first?.headers["last-event-id"], undefined);
    assert.equal(second?.headers["last-event-id"], undefined);
    assert.equal(third?.headers["last-event-id"], "w:1.a");
    assert.equal(errors.length, 1);
    const e = errors[0]![0];
    assert.ok(e instanceof RankdError && e.status === 503 && e.code === "unavailable" && e.retryAfterS === 0);
    assert.equal(errors[0]![1], true);
    stream.close();
    assert.deepEqual(await stream.closed, { reason: "closed" });
    assert.equal(stream.state, "closed");
  });

  test("a request with Last-Event-ID that gets no answer at all is made once without it (a browser's CORS refusal looks so)", async () => {
    server = new Scripted([
      (_, res) => { sse(res, `retry: 5\nid: w:1.a\nevent: top\ndata: ${PAGE(1)}\n\n`); res.end(); },
      (_, res) => { res.socket?.destroy(); }, // no answer: as a refused preflight shows to fetch
      (_, res) => { sse(res, `id: w:1.a\nevent: top\ndata: ${PAGE(1)}\n\n`); res.end(); },
      (_, res) => { sse(res, `id: w:2.b\nevent: top\ndata: ${PAGE(2)}\n\n`); },
    ]);
    const client = new RankdClient({ baseUrl: await server.start() });
    const tops: string[] = [];
    stream = client.liveTop("b", {}, { onTop: (_, info) => tops.push(info.id) });
    await until(() => tops.length === 3, "three events over four requests");
    assert.deepEqual(server.requests.map((r) => r.headers["last-event-id"]), [undefined, "w:1.a", undefined, "w:1.a"]);
    assert.deepEqual(tops, ["w:1.a", "w:1.a", "w:2.b"]); // the answer again (whole), then the change
  });

  test("gone ends the stream with the error object; no reconnection", async () => {
    server = new Scripted([
      (_, res) => { sse(res, `retry: 5\nid: w:1.a\nevent: top\ndata: ${PAGE(1)}\n\nid: w:1.a\nevent: gone\ndata: {"error":{"code":"not_found","message":"no such board","field":"board"}}\n\n`); },
    ]);
    const client = new RankdClient({ baseUrl: await server.start() });
    let gone: unknown = null;
    stream = client.liveTop("b", {}, { onGone: (err) => { gone = err; } });
    const end: LiveEnd = await stream.closed;
    assert.equal(end.reason, "gone");
    assert.deepEqual(gone, { code: "not_found", message: "no such board", field: "board" });
    assert.equal(server.requests.length, 1);
    assert.equal(server.requests[0]?.headers["authorization"], undefined); // no bearer: none sent
  });

  test("a refusal asking again cannot change (401) ends the stream as refused", async () => {
    server = new Scripted([
      (_, res) => { res.writeHead(401, { "Content-Type": "application/json" }); res.end('{"error":{"code":"unauthenticated","message":"a key is needed"}}'); },
    ]);
    const client = new RankdClient({ baseUrl: await server.start() });
    const seen: boolean[] = [];
    stream = client.liveTop("b", {}, { onError: (_, r) => seen.push(r.willRetry) });
    const end = await stream.closed;
    assert.equal(end.reason, "refused");
    assert.ok(end.reason === "refused" && end.error instanceof RankdError && end.error.code === "unauthenticated");
    assert.deepEqual(seen, [false]);
    assert.equal(server.requests.length, 1);
  });

  test("a connection that receives nothing for idleTimeoutMs is dropped and made again; maxFailures refusals in a row give up", async () => {
    server = new Scripted([
      (_, res) => { sse(res, `retry: 5\nid: w:1.a\nevent: top\ndata: ${PAGE(1)}\n\n`); }, // then silence
      (_, res) => { res.writeHead(502, { "Content-Type": "text/html" }); res.end("<h1>Bad gateway</h1>"); },
    ]);
    const client = new RankdClient({ baseUrl: await server.start() });
    const errors: Error[] = [];
    stream = client.liveTop("b", { idleTimeoutMs: 200, maxFailures: 2 }, { onError: (e) => errors.push(e) });
    const end = await stream.closed;
    assert.equal(end.reason, "refused");
    assert.equal(server.requests.length, 2);
    assert.equal(server.requests[1]?.headers["last-event-id"], "w:1.a");
    assert.equal(errors.length, 2);
    assert.ok(errors[0] instanceof RankdConnectionError && /nothing received for 200 ms/.test(errors[0].message), String(errors[0]));
    assert.ok(errors[1] instanceof RankdError && errors[1].status === 502 && !errors[1].fromServer, String(errors[1]));
  });

  test("the signal closes the stream; a handler that throws is reported and the stream goes on", async () => {
    server = new Scripted([
      (_, res) => { sse(res, `id: 1\nevent: top\ndata: ${PAGE(1)}\n\nevent: surprise\ndata: new kind\n\n`); },
    ]);
    const client = new RankdClient({ baseUrl: await server.start() });
    const ac = new AbortController();
    const errors: Error[] = [];
    const others: SseEvent[] = [];
    stream = client.liveTop("b", { signal: ac.signal }, {
      onTop: () => { throw new Error("a bug in the handler"); },
      onEvent: (e) => others.push(e),
      onError: (e) => errors.push(e),
    });
    await until(() => others.length === 1, "the unknown event");
    assert.deepEqual(others, [{ event: "surprise", data: "new kind", id: "1" }]);
    assert.equal(errors[0]?.message, "a bug in the handler");
    ac.abort();
    assert.deepEqual(await stream.closed, { reason: "closed" });
  });
});

// ------------------------------------------------------------------------------------------------
// Against a real rankd.

const env = process.env;
const URL_ = env["RANKD_URL"];
const skip = URL_ ? false : "RANKD_URL is not set: run tests/e2e/test_typescript_client.py, which starts rankd";
const base = URL_ ?? "http://127.0.0.1:1";
const admin = new RankdClient({ baseUrl: base, auth: env["RANKD_ADMIN_KEY"] ?? "" });
const writer = new RankdClient({ baseUrl: base, auth: env["RANKD_WRITE_KEY"] ?? "" });
const reader = new RankdClient({ baseUrl: base, auth: env["RANKD_READ_KEY"] ?? "" });

async function newBoard(): Promise<string> {
  const id = `tslive-${randomUUID().slice(0, 10)}`;
  await admin.createBoard({ id, title: "TS live " + id, sort: "desc", operator: "best", reset: "none" });
  return id;
}

describe("liveTop against a real rankd", { skip }, () => {
  test("the current top first, then a write's new top; close() ends it", async () => {
    const board = await newBoard();
    await writer.submitScore(board, { player_id: "ada", score: 10 });
    await writer.submitScore(board, { player_id: "bo", score: 20 });
    const tops: LiveTop[] = [];
    const ids: string[] = [];
    const stream = reader.liveTop(board, { top: 3, rankStyle: "competition" }, {
      onTop: (page, info) => { tops.push(page); ids.push(info.id); },
    });
    try {
      await until(() => tops.length === 1, "the first top event");
      assert.deepEqual(tops[0], await reader.entriesPage(board, { limit: 3, rank_style: "competition" }));
      await writer.submitScore(board, { player_id: "cy", score: 30 });
      await until(() => tops.some((t) => t.entries[0]?.player_id === "cy"), "the new top pushed");
      const last = tops[tops.length - 1]!;
      assert.deepEqual(last.entries.map((e) => [e.rank, e.player_id, e.score]), [[1, "cy", 30], [2, "bo", 20], [3, "ada", 10]]);
      assert.equal(last.total, 3);
      assert.match(stream.lastEventId, /^[^:]+:\d+\.[0-9a-f]{8}$/);
      assert.equal(stream.lastEventId, ids[ids.length - 1]);
    } finally {
      stream.close();
    }
    assert.deepEqual(await stream.closed, { reason: "closed" });
  });

  test("resuming with lastEventId sends nothing until the top changes", async () => {
    const board = await newBoard();
    await writer.submitScore(board, { player_id: "ada", score: 10 });
    let id = "";
    const probe = reader.liveTop(board, { top: 5 }, { onTop: (_, info) => { id = info.id; } });
    await until(() => id !== "", "an event id");
    probe.close();
    const tops: LiveTop[] = [];
    let opened = false;
    const resumed = reader.liveTop(board, { top: 5, lastEventId: id }, {
      onOpen: () => { opened = true; },
      onTop: (p) => tops.push(p),
    });
    try {
      await until(() => opened, "the resumed stream's answer");
      await writer.submitScore(board, { player_id: "bo", score: 99 });
      await until(() => tops.length > 0, "the change");
      // The first event after resuming is the change, not the answer the id named again.
      assert.equal(tops[0]?.entries[0]?.player_id, "bo");
    } finally {
      resumed.close();
    }
  });

  test("a deleted board: gone (not_found) ends the stream; an unknown board or no key: refused", async () => {
    const board = await newBoard();
    let gone: unknown = null;
    let opened = false;
    const stream = reader.liveTop(board, {}, { onOpen: () => { opened = true; }, onGone: (e) => { gone = e; } });
    await until(() => opened, "the stream");
    await admin.call("deleteBoard", { path: { board } });
    const end = await stream.closed;
    assert.equal(end.reason, "gone");
    assert.equal((gone as { code: string } | null)?.code, "not_found");

    const unknown = reader.liveTop(`tslive-none-${randomUUID().slice(0, 6)}`);
    const e1 = await unknown.closed;
    assert.ok(e1.reason === "refused" && e1.error instanceof RankdError && e1.error.status === 404 && e1.error.code === "not_found");
    const anon = reader.liveTop(await newBoard(), { auth: null });
    const e2 = await anon.closed;
    assert.ok(e2.reason === "refused" && e2.error instanceof RankdError && e2.error.code === "unauthenticated");
    const bad = reader.liveTop(await newBoard(), { top: 101 });
    const e3 = await bad.closed;
    assert.ok(e3.reason === "refused" && e3.error instanceof RankdError && e3.error.status === 400 && e3.error.field === "top");
  });
});

describe("livePlayer against a real rankd", { skip }, () => {
  test("the player's own token opens their stream: their standing first, then rank, previous rank, who overtook them", async () => {
    const board = await newBoard();
    for (const [p, s] of [["ada", 50], ["bo", 40], ["cy", 30]] as const) await writer.submitScore(board, { player_id: p, score: s });
    const { token } = await writer.mintPlayerToken("bo", { ttl_s: 600 });
    const me = new RankdClient({ baseUrl: base, auth: token });
    const events: LivePlayer[] = [];
    const stream = me.livePlayer(board, "bo", { around: 1 }, { onPlayer: (e) => events.push(e) });
    try {
      await until(() => events.length === 1, "the first player event");
      const around: Schemas["EntryList"] = await reader.around(board, "bo", { before: 1, after: 1 });
      assert.equal(events[0]?.rank, 2);
      assert.equal(events[0]?.player, "bo");
      assert.deepEqual(events[0]?.entries, around.entries);
      await writer.submitScore(board, { player_id: "cy", score: 45 });
      await until(() => events.length >= 2, "the change");
      const last = events[events.length - 1]!;
      assert.equal(last.rank, 3);
      assert.equal(last.previous_rank, 2);
      assert.deepEqual(last.overtaken_by, ["cy"]);
      assert.deepEqual(last.entries.map((e) => e.player_id), ["cy", "bo"]); // bo is last now: one above, none below
    } finally {
      stream.close();
    }
  });

  test("a player with no standing yet: rank and score null, entries empty, until their first score", async () => {
    const board = await newBoard();
    await writer.submitScore(board, { player_id: "ada", score: 5 });
    const events: LivePlayer[] = [];
    const stream = reader.livePlayer(board, "newcomer", { around: 2, rankStyle: "dense" }, { onPlayer: (e) => events.push(e) });
    try {
      await until(() => events.length === 1, "the first player event");
      assert.deepEqual([events[0]?.player, events[0]?.rank, events[0]?.score, events[0]?.entries], ["newcomer", null, null, []]);
      await writer.submitScore(board, { player_id: "newcomer", score: 9 });
      await until(() => events.length >= 2, "the first score");
      const last = events[events.length - 1]!;
      assert.deepEqual([last.rank, last.score, last.previous_rank, last.total], [1, 9, null, 2]);
    } finally {
      stream.close();
    }
  });

});

// RANKD_CLOCK_URL: an instance whose wall clock follows RANKD_CLOCK_FILE (its offset from the real
// clock, in ms), so that a daily window ends during the test.
const CLOCK_URL = env["RANKD_CLOCK_URL"];
const CLOCK_FILE = env["RANKD_CLOCK_FILE"];

describe("a window's reset on both streams (a rankd whose clock the test moves)", {
  skip: CLOCK_URL && CLOCK_FILE ? false : "RANKD_CLOCK_URL and RANKD_CLOCK_FILE are not set",
}, () => {
  test("reset names the new window, and the new window's (empty) answer follows on each stream", async () => {
    const { writeFileSync, renameSync } = await import("node:fs");
    const at = (key: string) => new RankdClient({ baseUrl: CLOCK_URL!, auth: env[key] ?? "" });
    const adm = at("RANKD_ADMIN_KEY"), w = at("RANKD_WRITE_KEY"), r = at("RANKD_READ_KEY");
    const id = `tslive-${randomUUID().slice(0, 10)}`;
    await adm.createBoard({ id, title: "TS reset " + id, sort: "desc", operator: "best", reset: "daily" });
    await w.submitScore(id, { player_id: "p", score: 7 });
    const seen: [string, string, unknown][] = []; // [stream, event, data]
    const top = r.liveTop(id, { top: 3 }, {
      onTop: (t) => seen.push(["top", "top", t]),
      onReset: (x) => seen.push(["top", "reset", x]),
    });
    const me = r.livePlayer(id, "p", { around: 1 }, {
      onPlayer: (x) => seen.push(["me", "player", x]),
      onReset: (x) => seen.push(["me", "reset", x]),
    });
    try {
      await until(() => seen.filter((s) => s[1] !== "reset").length === 2, "both streams' first events");
      const old = (seen.find((s) => s[0] === "top")![2] as LiveTop).window;
      const next = new Date(Date.parse(old + "T00:00:00Z") + 86_400_000);
      const fresh = next.toISOString().slice(0, 10);
      writeFileSync(CLOCK_FILE + ".tmp", String(next.getTime() + 500 - Date.now()));
      renameSync(CLOCK_FILE + ".tmp", CLOCK_FILE!); // past midnight, no write
      await until(() => seen.length >= 6, "a reset and the new window's answer on each stream");
      for (const [stream, kind] of [["top", "top"], ["me", "player"]] as const) {
        const mine = seen.filter((s) => s[0] === stream);
        assert.deepEqual(mine.map((s) => s[1]), [kind, "reset", kind]);
        assert.deepEqual(mine[1]![2], { board: id, window: fresh, previous_window: old });
        const after = mine[2]![2] as LiveTop | LivePlayer;
        assert.equal(after.window, fresh);
        assert.deepEqual(after.entries, []);
      }
      const mineLast = seen.filter((s) => s[0] === "me")[2]![2] as LivePlayer;
      assert.deepEqual([mineLast.rank, mineLast.score, mineLast.previous_rank], [null, null, 1]);
    } finally {
      top.close();
      me.close();
    }
  });
});
