// The examples of docs/typescript-client.md, compiled (never run) with the tests: a change to the
// client or the spec that breaks one fails tsc in tests/e2e/test_typescript_client.py.
import { RankdClient, RankdError, isRankdError, type LiveEnd, type Schemas } from "../src/index.js";

declare const baseUrl: string;
declare function log(x: unknown): void;
declare function render(entries: Schemas["Entry"][]): void;
declare const token: string;

export async function server(): Promise<void> {
  const rankd = new RankdClient({ baseUrl: "http://127.0.0.1:8080", auth: process.env["RANKD_WRITE_KEY"] });
  const result: Schemas["SubmitResult"] = await rankd.submitScore("arcade", {
    player_id: "ada", score: 1200, metadata: { level: 7 },
  });
  log([result.rank, result.previous_rank]);
  const top: Schemas["Entry"][] = await rankd.top("arcade", 10);
  const near = await rankd.around("arcade", "ada", { before: 3, after: 3 });
  const me = await rankd.player("arcade", "ada", { rank_style: "competition" });
  log([top, near.entries, me.top_percent]);
  const stats = await rankd.call("getStats", { path: { board: "arcade" } });
  const batch = await rankd.call("submitScores", { body: { scores: [{ board: "arcade", player_id: "bo", score: 900 }] } });
  log([stats.percentiles, batch.results]);
  const r = await rankd.request("getBoard", { path: { board: "arcade" }, headers: { "If-None-Match": "\"x\"" } });
  log([r.status, r.body?.players, r.requestId]);
}

export async function tokens(): Promise<void> {
  const rankd = new RankdClient({ baseUrl, auth: "key" });
  const { token, expires_at } = await rankd.mintPlayerToken("ada", { ttl_s: 3600, boards: ["arcade"] });
  log(expires_at);
  const player = new RankdClient({ baseUrl, auth: token });
  await player.submitScore("arcade", { player_id: "ada", score: 1300 });
  try {
    await player.submitScore("arcade", { player_id: "someone-else", score: 1 });
  } catch (e) {
    if (e instanceof RankdError) {
      log([e.status, e.code, e.field, e.error.message, e.requestId, e.fromServer, e.retryAfterS]);
    } else {
      throw e;
    }
    if (isRankdError(e, "rate_limited")) log(e.retryAfterS);
  }
}

export async function paging(): Promise<void> {
  const rankd = new RankdClient({ baseUrl, auth: () => "key", retry: { retries: 2, maxWaitMs: 10_000, onRetry: (i) => log(i) } });
  for await (const entry of rankd.entries("arcade", { limit: 100 })) log(entry.rank);
  for await (const board of rankd.boards({ kind: "tournament" })) log(board.id);
  for await (const w of rankd.windows("weekly")) log(w.window);
  for await (const page of rankd.pages("getEntries", { path: { board: "arcade" }, query: { limit: 50 } }, { maxPages: 4 })) {
    log([page.entries.length, page.next_cursor]);
  }
  await rankd.submitScore("arcade", { player_id: "ada", score: 5 }, { idempotencyKey: "round-7f3a" });
}

export async function live(): Promise<void> {
  const rankd = new RankdClient({ baseUrl, auth: "key" });
  const top = rankd.liveTop("arcade", { top: 10 }, {
    onTop: (page) => render(page.entries),
    onReset: (r) => log(`window ${r.previous_window} ended, ${r.window} began`),
    onGone: (e) => log(e.code),
    onError: (e, retry) => log([e.message, retry.willRetry, retry.delayMs]),
  });
  const me = new RankdClient({ baseUrl, auth: token }).livePlayer("arcade", "ada", { around: 2 }, {
    onPlayer: (p) => log([p.rank, p.previous_rank, p.overtaken_by, p.entries]),
  });
  top.close();
  const end: LiveEnd = await me.closed;
  log(end.reason);
}

// docs/guides/live.md
export function guide(): void {
  const controller = new AbortController();
  const rankd = new RankdClient({ baseUrl, auth: () => token });
  let saved: string | undefined;
  const stream = rankd.livePlayer("arcade", "ada", { around: 3, signal: controller.signal, lastEventId: saved }, {
    onOpen: ({ reconnect }) => log(reconnect ? "live again" : "live"),
    onPlayer: (p, info) => {
      saved = info.id;
      if (p.rank !== null && p.previous_rank !== null && p.rank > p.previous_rank) log(`overtaken by ${p.overtaken_by.join(", ")}`);
    },
    onReset: (r) => log(r.window),
    onGone: (e) => log(e.code === "rate_limited" ? "reads used up" : "the board is gone"),
    onError: (e, { willRetry, delayMs }) => log([e.message, willRetry, delayMs]),
  });
  void stream.closed.then((end) => log(end.reason === "refused" ? end.error.message : end.reason));
  controller.abort();
}
