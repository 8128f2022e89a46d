// The client against a real rankd (PostgreSQL and Redis behind it), started by
// tests/e2e/test_typescript_client.py, which passes in the environment:
//   RANKD_URL          an instance with keyed reads (public_reads false)
//   RANKD_LIMITED_URL  an instance of the same database whose reads are limited to 1/s per key
//   RANKD_ADMIN_KEY, RANKD_WRITE_KEY, RANKD_READ_KEY
// Without RANKD_URL every test is skipped (run them through the pytest test, or against your own rankd).
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:net";
import { randomUUID } from "node:crypto";

import {
  RankdClient, RankdConnectionError, RankdError, isRankdError, parseRetryAfter,
  type RetryInfo, type Schemas,
} from "../src/index.js";

const env = process.env;
const URL_ = env["RANKD_URL"];
const skip = URL_ ? false : "RANKD_URL is not set: run tests/e2e/test_typescript_client.py, which starts rankd";
const ADMIN = env["RANKD_ADMIN_KEY"] ?? "";
const WRITE = env["RANKD_WRITE_KEY"] ?? "";
const READ = env["RANKD_READ_KEY"] ?? "";

const admin = () => new RankdClient({ baseUrl: URL_ ?? "http://127.0.0.1:1", auth: ADMIN });
const writer = () => new RankdClient({ baseUrl: URL_ ?? "http://127.0.0.1:1", auth: WRITE });
const reader = () => new RankdClient({ baseUrl: URL_ ?? "http://127.0.0.1:1", auth: READ });

function unique(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 10)}`;
}

async function newBoard(extra: Partial<Schemas["BoardCreate"]> = {}): Promise<Schemas["Board"]> {
  const id = unique("ts");
  return admin().createBoard({ id, title: "TS " + id, sort: "desc", operator: "best", reset: "none", ...extra });
}

/** The RankdError `fn` throws (fails when it throws anything else, or nothing). */
async function refusal(fn: () => Promise<unknown>): Promise<RankdError> {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof RankdError, `expected a RankdError, got ${String(e)}`);
    return e;
  }
  assert.fail("expected a RankdError, got an answer");
}

describe("RankdClient against a real rankd", { skip }, () => {
  test("keys as the bearer: admin creates, write submits, read reads; the answers are the contract's types", async () => {
    const board = await newBoard();
    assert.equal(board.players, 0);
    const w = writer();
    const r1: Schemas["SubmitResult"] = await w.submitScore(board.id, { player_id: "ada", score: 120, metadata: { level: 7, name: "Ada" } });
    assert.equal(r1.rank, 1);
    assert.equal(r1.previous_score, null);
    await w.submitScore(board.id, { player_id: "bo", score: 300 });
    const top = await reader().top(board.id);
    assert.deepEqual(top.map((e) => [e.rank, e.player_id, e.score]), [[1, "bo", 300], [2, "ada", 120]]);
    // Metadata is an open object (the schema says additionalProperties: true).
    const meta: Record<string, unknown> | undefined = top[1]?.metadata;
    assert.deepEqual(meta, { level: 7, name: "Ada" });
    const standing = await reader().player(board.id, "ada");
    assert.equal(standing.rank, 2);
    assert.equal(standing.total, 2);
  });

  test("errors are RankdError with the contract's error object", async () => {
    const board = await newBoard();
    // A read without a key where reads need one: 401.
    const anon = new RankdClient({ baseUrl: URL_!, auth: null });
    const e401 = await refusal(() => anon.getBoard(board.id));
    assert.equal(e401.status, 401);
    assert.equal(e401.code, "unauthenticated");
    assert.ok(e401.fromServer);
    assert.ok(e401.requestId, "X-Request-Id of the answer");
    // A write key creating a board: 403.
    const e403 = await refusal(() => writer().createBoard({ id: unique("ts"), title: "x", sort: "desc", operator: "best", reset: "none" }));
    assert.equal(e403.status, 403);
    assert.equal(e403.code, "permission_denied");
    // A player id the contract refuses: 400, field player_id; nothing applied.
    const e400 = await refusal(() => writer().submitScore(board.id, { player_id: "bad id with spaces", score: 1 }));
    assert.equal(e400.status, 400);
    assert.equal(e400.error.code, "invalid_argument");
    assert.equal(e400.field, "player_id");
    assert.equal((await reader().getBoard(board.id)).players, 0);
    // An unknown board: 404, field board.
    const e404 = await refusal(() => reader().top(unique("none")));
    assert.ok(isRankdError(e404, "not_found"));
    assert.equal(e404.field, "board");
    assert.match(e404.message, /404 not_found/);
    // A player without a standing: 404, field player_id.
    const nobody = await refusal(() => reader().player(board.id, "nobody"));
    assert.equal(nobody.field, "player_id");
  });

  test("the bearer may be a function, asked before each request (a token that renews)", async () => {
    const board = await newBoard();
    let asked = 0;
    const c = new RankdClient({ baseUrl: URL_!, auth: async () => { asked++; return READ; } });
    await c.getBoard(board.id);
    await c.top(board.id);
    assert.equal(asked, 2);
    // Per request, another bearer; withAuth gives a client with another one.
    await c.call("submitScore", { path: { board: board.id }, body: { player_id: "p1", score: 5 }, auth: WRITE });
    assert.equal((await c.withAuth(WRITE).player(board.id, "p1")).score, 5);
  });

  test("cursor paging: entries, boards and windows follow next_cursor to the end; prev_cursor goes back", async () => {
    const board = await newBoard();
    const w = writer();
    const items = Array.from({ length: 25 }, (_, i) => ({ board: board.id, player_id: `p${String(i).padStart(2, "0")}`, score: 1000 - i * 10 }));
    const batch = await w.call("submitScores", { body: { scores: items } });
    assert.equal(batch.results.length, 25);
    const r = reader();
    const all: Schemas["Entry"][] = [];
    for await (const e of r.entries(board.id, { limit: 7 })) all.push(e);
    assert.deepEqual(all.map((e) => e.player_id), items.map((i) => i.player_id));
    assert.deepEqual(all.map((e) => e.rank), items.map((_, i) => i + 1));
    const pages: Schemas["Page"][] = [];
    for await (const p of r.pages("getEntries", { path: { board: board.id }, query: { limit: 10 } })) pages.push(p);
    assert.deepEqual(pages.map((p) => p.entries.length), [10, 10, 5]);
    assert.equal(pages[2]?.next_cursor, null);
    // Backwards from the last page, by prev_cursor.
    const back: number[] = [];
    for await (const p of r.pages("getEntries", { path: { board: board.id }, query: { limit: 10, offset: 20 } }, { direction: "prev" })) {
      back.push(p.entries[0]?.rank ?? -1);
    }
    assert.deepEqual(back, [21, 11, 1]);
    // maxPages stops early.
    let n = 0;
    for await (const _ of r.pages("getEntries", { path: { board: board.id }, query: { limit: 5 } }, { maxPages: 2 })) n++;
    assert.equal(n, 2);
    // Boards, two by two: ours among them, in id order.
    const ids: string[] = [];
    for await (const b of r.boards({ limit: 2 })) ids.push(b.id);
    assert.ok(ids.includes(board.id));
    assert.deepEqual([...ids].sort(), ids);
    const windows: string[] = [];
    for await (const win of r.windows(board.id, { limit: 1 })) windows.push(win.window);
    assert.deepEqual(windows, [board.current_window]);
  });

  test("around, players and rank of a score", async () => {
    const board = await newBoard();
    const items = Array.from({ length: 9 }, (_, i) => ({ board: board.id, player_id: `q${i}`, score: 90 - i }));
    await writer().call("submitScores", { body: { scores: items } });
    const r = reader();
    const around = await r.around(board.id, "q4", { before: 2, after: 2 });
    assert.deepEqual(around.entries.map((e) => e.player_id), ["q2", "q3", "q4", "q5", "q6"]);
    assert.equal(around.total, 9);
    const some = await r.players(board.id, ["q8", "q0"]);
    assert.deepEqual(some.entries.map((e) => e.rank), [1, 9]);
    const ros = await r.rankOfScore(board.id, 87);
    assert.equal(typeof ros.rank, "number");
  });

  test("request() gives status and headers: an ETag sent back is 304", async () => {
    const board = await newBoard();
    const r = reader();
    const first = await r.request("getBoard", { path: { board: board.id } });
    assert.equal(first.status, 200);
    const etag = first.headers.get("ETag");
    assert.ok(etag);
    const again = await r.request("getBoard", { path: { board: board.id }, headers: { "If-None-Match": etag } });
    assert.equal(again.status, 304);
    assert.equal(again.body, undefined);
  });

  test("a minted player token as the bearer: its own player's score on a client_writes board, nothing else", async () => {
    const open = await newBoard({ client_writes: true });
    const serverOnly = await newBoard();
    const me = unique("ply");
    const minted = await writer().mintPlayerToken(me, { ttl_s: 600 });
    assert.equal(minted.player_id, me);
    assert.ok(Date.parse(minted.expires_at) > Date.now());
    const player = new RankdClient({ baseUrl: URL_!, auth: minted.token });
    const r = await player.submitScore(open.id, { player_id: me, score: 42 });
    assert.equal(r.player_id, me);
    assert.equal(r.score, 42);
    // Reads as a read key does.
    assert.deepEqual((await player.top(open.id)).map((e) => [e.player_id, e.score]), [[me, 42]]);
    assert.equal((await player.around(open.id, me)).entries[0]?.player_id, me);
    // Another player's id, a server-only board, an admin route: 403 with the contract's error object.
    const other = await refusal(() => player.submitScore(open.id, { player_id: "someone-else", score: 1 }));
    assert.equal(other.status, 403);
    assert.equal(other.code, "permission_denied");
    const serverOnlyRefusal = await refusal(() => player.submitScore(serverOnly.id, { player_id: me, score: 1 }));
    assert.equal(serverOnlyRefusal.code, "permission_denied");
    assert.match(serverOnlyRefusal.error.message, /client_writes/);
    const adminRoute = await refusal(() => player.createBoard({ id: unique("ts"), title: "x", sort: "desc", operator: "best", reset: "none" }));
    assert.equal(adminRoute.status, 403);
    assert.equal((await reader().player(open.id, me)).score, 42, "the refusals changed nothing");
    // A token that is not one rankd signed: 401.
    const forged = await refusal(() => new RankdClient({ baseUrl: URL_!, auth: minted.token.slice(0, -2) + "xx" }).top(open.id));
    assert.equal(forged.status, 401);
  });

  test("a token provider renews the token: after a revocation the next mint is used", async () => {
    const open = await newBoard({ client_writes: true });
    const me = unique("ply");
    let mints = 0;
    let current: string | null = null;
    const provider = async () => {
      if (current === null) {
        current = (await writer().mintPlayerToken(me, { boards: [open.id] })).token;
        mints++;
      }
      return current;
    };
    const player = new RankdClient({ baseUrl: URL_!, auth: provider });
    await player.submitScore(open.id, { player_id: me, score: 1 });
    await admin().revokePlayerTokens(me);
    // The revoked token is refused (within a second on every instance; this is the same one).
    const refused = await refusal(() => player.submitScore(open.id, { player_id: me, score: 2 }));
    assert.equal(refused.status, 401);
    current = null; // the game's login mints a new one
    assert.equal((await player.submitScore(open.id, { player_id: me, score: 3 })).score, 3);
    assert.equal(mints, 2);
  });

  test("no answer is a RankdConnectionError", async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, "127.0.0.1", () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const c = new RankdClient({ baseUrl: `http://127.0.0.1:${port}`, auth: READ, retry: { retries: 3 } });
    await assert.rejects(() => c.getBoard("x"), (e: unknown) => e instanceof RankdConnectionError && /GET \/v1\/leaderboards\/x/.test(e.message));
  });
});

describe("retries of 429 honour Retry-After, bounded", { skip: env["RANKD_LIMITED_URL"] ? false : "RANKD_LIMITED_URL is not set" }, () => {
  const limited = (retry: ConstructorParameters<typeof RankdClient>[0]["retry"], key: string) =>
    new RankdClient({ baseUrl: env["RANKD_LIMITED_URL"]!, auth: key, retry });

  test("requests over the limit wait Retry-After and then succeed", async () => {
    // One read a second per key (burst 1): of four sent at once at most one is answered at
    // once (two, should a second pass while they arrive); the others are refused with
    // Retry-After and retried after it, until each is answered.
    const seen: RetryInfo[] = [];
    const c = limited({ retries: 8, maxWaitMs: 5000, onRetry: (i) => seen.push(i) }, READ);
    const answers = await Promise.all([1, 2, 3, 4].map(() => c.call("listBoards", { query: { limit: 1 } })));
    assert.equal(answers.length, 4);
    assert.ok(seen.length >= 2, `expected at least two retries, saw ${seen.length}`);
    for (const i of seen) {
      assert.equal(i.status, 429);
      assert.ok(i.waitMs >= 1000 && i.waitMs <= 5000, `waited ${i.waitMs} ms`);
      assert.equal(i.method, "GET");
    }
  });

  test("without retries, or when Retry-After is longer than maxWaitMs, the 429 is thrown with Retry-After", async () => {
    for (const retry of [{ retries: 0 }, { retries: 5, maxWaitMs: 500 }]) {
      const seen: RetryInfo[] = [];
      const c = limited({ ...retry, onRetry: (i) => seen.push(i) }, WRITE);
      // The bucket holds one read: of four requests sent at once, some are refused.
      const results = await Promise.allSettled([1, 2, 3, 4].map(() => c.call("listBoards", { query: { limit: 1 } })));
      const refused = results.filter((r): r is PromiseRejectedResult => r.status === "rejected").map((r) => r.reason as unknown);
      assert.ok(refused.length >= 1, "some of four reads at once over a 1/s limit are refused");
      for (const e of refused) {
        assert.ok(isRankdError(e, "rate_limited"), String(e));
        assert.equal(e.status, 429);
        assert.ok(e.retryAfterS !== null && e.retryAfterS >= 1);
      }
      assert.equal(seen.length, 0, "nothing was retried");
    }
  });
});

describe("parseRetryAfter", () => {
  test("delta-seconds, an HTTP date, nothing", () => {
    assert.equal(parseRetryAfter("3"), 3);
    assert.equal(parseRetryAfter(" 0 "), 0);
    assert.equal(parseRetryAfter(null), null);
    assert.equal(parseRetryAfter("soon"), null);
    const now = Date.parse("2026-11-28T00:00:00Z");
    assert.equal(parseRetryAfter("Sat, 28 Nov 2026 00:00:05 GMT", now), 5);
    assert.equal(parseRetryAfter("Fri, 27 Nov 2026 23:00:00 GMT", now), 0);
  });
});
