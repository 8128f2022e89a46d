import type { components, operations } from "./generated/openapi.js";
import { routes } from "./generated/routes.js";
import { RankdConnectionError, RankdError } from "./errors.js";
import {
  openStream, type LivePlayer, type LivePlayerHandlers, type LivePlayerOptions, type LiveStream, type LiveTop,
  type LiveTopHandlers, type LiveTopOptions,
} from "./live.js";

/** Every schema of the contract, by name: `Schemas["Entry"]`, `Schemas["SubmitResult"]`, … */
export type Schemas = components["schemas"];

/** An operation of api/openapi.json, by its operationId. */
export type OperationId = keyof operations & keyof typeof routes;

type Params<O extends OperationId> = operations[O]["parameters"];
/** The path parameters of operation O (never when it has none). */
export type PathParams<O extends OperationId> = Params<O> extends { path: infer P } ? P : never;
/** The query parameters of operation O (never when it has none). */
export type QueryParams<O extends OperationId> = NonNullable<Params<O>["query"]>;
/** The JSON body operation O takes (never when it takes none). */
export type RequestBody<O extends OperationId> =
  NonNullable<operations[O]["requestBody"]> extends { content: { "application/json": infer B } } ? B : never;

type JsonOf<R> = R extends { content: { "application/json": infer T } } ? T
  : R extends { content: Record<string, unknown> } ? string : undefined;
type Responses<O extends OperationId> = operations[O]["responses"];
/** What a successful answer to operation O holds: its JSON body (a string for text answers,
 * undefined for 204). */
export type Result<O extends OperationId> =
  200 extends keyof Responses<O> ? JsonOf<Responses<O>[200]>
  : 201 extends keyof Responses<O> ? JsonOf<Responses<O>[201]>
  : 204 extends keyof Responses<O> ? undefined
  : unknown;

/** The operations whose answer carries a cursor (`cursor=` in, `next_cursor` out). */
export type CursorOperation = {
  [K in OperationId]: [QueryParams<K>] extends [never] ? never : "cursor" extends keyof QueryParams<K> ? K : never;
}[OperationId];

/** The bearer of a request: an API key or a player token, or a function giving one (called
 * before each request, so a token can be renewed); null or undefined sends none. */
export type Auth = string | null | undefined | (() => string | null | undefined | Promise<string | null | undefined>);

/** When and how long to retry an answer that asks to be retried (429, 503 with `Retry-After`). */
export interface RetryPolicy {
  /** Attempts after the first (0: never retry). Default 2. */
  retries: number;
  /** The longest `Retry-After` waited for, in ms; an answer asking for longer is thrown at once.
   * Default 10000. */
  maxWaitMs: number;
  /** Called before each wait (for logs and tests). */
  onRetry?: (info: RetryInfo) => void;
}

export interface RetryInfo {
  /** The attempt that was refused (1 = the first). */
  attempt: number;
  status: number;
  /** How long the client waits before the next attempt. */
  waitMs: number;
  method: string;
  path: string;
}

export interface ClientOptions {
  /** rankd's base URL, e.g. `https://rankd.example.com` (no trailing `/v1`). */
  baseUrl: string;
  /** The bearer: a key, a player token, or a function giving one. */
  auth?: Auth;
  retry?: Partial<RetryPolicy>;
  /** Per-attempt timeout in ms (0: none). Default 30000. */
  timeoutMs?: number;
  /** A fetch of your own (default: the global fetch). */
  fetch?: typeof fetch;
  /** Headers sent with every request. */
  headers?: Record<string, string>;
}

export interface CallOptions<O extends OperationId> {
  path?: PathParams<O>;
  query?: QueryParams<O>;
  body?: RequestBody<O>;
  /** Headers of this request (If-None-Match, X-Request-Id, …). */
  headers?: Record<string, string>;
  /** `Idempotency-Key`: a write that carries one may be retried on 503 too. */
  idempotencyKey?: string;
  /** This request's bearer instead of the client's. */
  auth?: Auth;
  retry?: Partial<RetryPolicy>;
  signal?: AbortSignal;
}

type CallArgs<O extends OperationId> = [PathParams<O>] extends [never]
  ? [options?: CallOptions<O>]
  : [options: CallOptions<O> & { path: PathParams<O> }];

/** An answer: status, headers, body (parsed JSON, or text). */
export interface RankdResponse<T> {
  status: number;
  headers: Headers;
  /** Undefined for 204 and 304. */
  body: T;
  /** `X-Request-Id`, the id rankd logs the request under. */
  requestId: string | null;
}

export interface PagingOptions {
  /** Follow `next_cursor` (default) or `prev_cursor` (pages of entries only). */
  direction?: "next" | "prev";
  /** Stop after this many pages. */
  maxPages?: number;
}

const SAFE_OPERATIONS: ReadonlySet<string> = new Set(["batchReads"]); // a POST that only reads

/** `Retry-After` in seconds: delta-seconds or an HTTP date; null when absent or unreadable. */
export function parseRetryAfter(value: string | null, nowMs: number = Date.now()): number | null {
  if (value === null) return null;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v);
  const at = Date.parse(v);
  if (Number.isNaN(at)) return null;
  return Math.max(0, Math.ceil((at - nowMs) / 1000));
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * A client of one rankd. Every operation of api/openapi.json is `call(operationId, {path, query,
 * body})`, typed from the spec; the methods below name the common ones. A non-2xx answer throws a
 * RankdError (after the retries the policy allows); no answer at all throws a RankdConnectionError.
 */
export class RankdClient {
  readonly baseUrl: string;
  private readonly auth: Auth;
  private readonly retryPolicy: RetryPolicy;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;
  private readonly headers: Record<string, string>;

  constructor(options: ClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.auth = options.auth;
    this.retryPolicy = { retries: 2, maxWaitMs: 10000, ...options.retry };
    this.timeoutMs = options.timeoutMs ?? 30000;
    const f = options.fetch ?? globalThis.fetch;
    if (typeof f !== "function") throw new Error("no fetch: pass options.fetch (Node 18 or later has one)");
    this.fetchImpl = f.bind(globalThis);
    this.headers = { ...options.headers };
  }

  /** The same client with another bearer (a key, a player token, or a function giving one). */
  withAuth(auth: Auth): RankdClient {
    return new RankdClient({
      baseUrl: this.baseUrl, auth, retry: this.retryPolicy, timeoutMs: this.timeoutMs,
      fetch: this.fetchImpl, headers: this.headers,
    });
  }

  /** Operation O's body (throws RankdError on a non-2xx answer). */
  async call<O extends OperationId>(op: O, ...args: CallArgs<O>): Promise<Result<O>> {
    return (await this.request(op, ...args)).body;
  }

  /** Operation O's whole answer: status (2xx or 304), headers, body. */
  async request<O extends OperationId>(op: O, ...args: CallArgs<O>): Promise<RankdResponse<Result<O>>> {
    const options = (args[0] ?? {}) as CallOptions<O>;
    const route = routes[op];
    const target = this.target(route.path, options.path as Record<string, unknown> | undefined,
      options.query as Record<string, unknown> | undefined);
    const policy = { ...this.retryPolicy, ...options.retry };
    const headers: Record<string, string> = { Accept: "application/json", ...this.headers, ...options.headers };
    let body: string | undefined;
    if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers["Content-Type"] = "application/json";
    }
    if (options.idempotencyKey !== undefined) headers["Idempotency-Key"] = options.idempotencyKey;
    const safe = route.method === "GET" || SAFE_OPERATIONS.has(op);
    const mayRetry503 = safe || options.idempotencyKey !== undefined;

    for (let attempt = 1; ; attempt++) {
      const bearer = await this.bearer(options.auth !== undefined ? options.auth : this.auth);
      const h = { ...headers };
      if (bearer) h["Authorization"] = "Bearer " + bearer;
      const { res, parsed } = await this.fetchOnce(route.method, target, h, body, options.signal);
      if ((res.status >= 200 && res.status < 300) || res.status === 304) {
        return { status: res.status, headers: res.headers, body: parsed as Result<O>,
          requestId: res.headers.get("X-Request-Id") };
      }
      const retryAfterS = parseRetryAfter(res.headers.get("Retry-After"));
      const err = new RankdError({ status: res.status, body: parsed, method: route.method, path: target,
        retryAfterS, requestId: res.headers.get("X-Request-Id") });
      // 429 refused the request before any work; a 503 of a write is retried only when its
      // Idempotency-Key makes a second application impossible.
      const retryable = retryAfterS !== null && (res.status === 429 || (res.status === 503 && mayRetry503));
      const waitMs = (retryAfterS ?? 0) * 1000;
      if (!retryable || attempt > policy.retries || waitMs > policy.maxWaitMs) throw err;
      policy.onRetry?.({ attempt, status: res.status, waitMs, method: route.method, path: target });
      await sleep(waitMs, options.signal);
    }
  }

  /** Every page of a cursor operation (boards, entries, windows), from the one `options` asks for,
   * following `next_cursor` (or `prev_cursor`) until it is null. */
  async *pages<O extends CursorOperation>(op: O, options: CallOptions<O>, paging: PagingOptions = {}):
    AsyncGenerator<Result<O>, void, undefined> {
    const key = paging.direction === "prev" ? "prev_cursor" : "next_cursor";
    let query = { ...(options.query ?? {}) } as Record<string, unknown>;
    for (let n = 0; paging.maxPages === undefined || n < paging.maxPages; n++) {
      const page = await this.call(op, ...([{ ...options, query }] as unknown as CallArgs<O>));
      yield page;
      const next = (page as Record<string, unknown>)[key];
      if (typeof next !== "string" || next === query["cursor"]) return;
      query = { ...query, cursor: next };
      delete query["offset"];
    }
  }

  // --- the common operations by name ---------------------------------------------------------

  /** A board (getBoard). */
  getBoard(board: string): Promise<Schemas["Board"]> {
    return this.call("getBoard", { path: { board } });
  }

  /** Create a board (createBoard; an admin key). The same definition again answers the board. */
  createBoard(definition: Schemas["BoardCreate"]): Promise<Schemas["Board"]> {
    return this.call("createBoard", { body: definition }) as Promise<Schemas["Board"]>;
  }

  /** One page of entries (getEntries); `limit: 10` is the top 10. */
  entriesPage(board: string, query: QueryParams<"getEntries"> = {}): Promise<Schemas["Page"]> {
    return this.call("getEntries", { path: { board }, query });
  }

  /** The top `limit` entries (10 by default). */
  async top(board: string, limit = 10, query: Omit<QueryParams<"getEntries">, "limit"> = {}): Promise<Schemas["Entry"][]> {
    return (await this.entriesPage(board, { ...query, limit })).entries;
  }

  /** Every entry of a board's window in rank order, page after page (`limit` per page). */
  async *entries(board: string, query: QueryParams<"getEntries"> = {}): AsyncGenerator<Schemas["Entry"], void, undefined> {
    for await (const page of this.pages("getEntries", { path: { board }, query: { limit: 100, ...query } })) {
      yield* page.entries;
    }
  }

  /** Every board, page after page (listBoards). */
  async *boards(query: QueryParams<"listBoards"> = {}): AsyncGenerator<Schemas["Board"], void, undefined> {
    for await (const page of this.pages("listBoards", { query })) yield* page.leaderboards;
  }

  /** Every window of a board, newest first (listWindows). */
  async *windows(board: string, query: QueryParams<"listWindows"> = {}):
    AsyncGenerator<Schemas["WindowList"]["windows"][number], void, undefined> {
    for await (const page of this.pages("listWindows", { path: { board }, query })) yield* page.windows;
  }

  /** A player's standing (getPlayer); throws RankdError `not_found`, field `player_id`, when none. */
  player(board: string, player: string, query: QueryParams<"getPlayer"> = {}): Promise<Schemas["Standing"]> {
    return this.call("getPlayer", { path: { board, player }, query });
  }

  /** The player and up to `before` above and `after` below (getAround). */
  around(board: string, player: string, query: QueryParams<"getAround"> = {}): Promise<Schemas["EntryList"]> {
    return this.call("getAround", { path: { board, player }, query });
  }

  /** The rank a score would take now (getRankOfScore). */
  rankOfScore(board: string, score: number, query: Omit<QueryParams<"getRankOfScore">, "score"> = {}):
    Promise<Schemas["RankOfScore"]> {
    return this.call("getRankOfScore", { path: { board }, query: { ...query, score } });
  }

  /** Some players' entries in rank order (getPlayers; 1–100 ids). */
  players(board: string, ids: readonly string[], query: Omit<QueryParams<"getPlayers">, "ids"> = {}):
    Promise<Schemas["EntryList"]> {
    return this.call("getPlayers", { path: { board }, query: { ...query, ids: ids.join(",") } });
  }

  /** Submit a score (submitScore; a write key, or a player token for its own player on a board
   * that allows client writes). With `idempotencyKey` a 503 is retried too. */
  submitScore(board: string, submission: Schemas["ScoreSubmission"], options: { idempotencyKey?: string } = {}):
    Promise<Schemas["SubmitResult"]> {
    return this.call("submitScore", {
      path: { board }, body: submission,
      ...(options.idempotencyKey !== undefined ? { idempotencyKey: options.idempotencyKey } : {}),
    });
  }

  /** Mint a player token (mintPlayerToken; a write or admin key: the game's backend calls it once
   * per session, never the player's device). The token is a bearer for a client of the player's
   * own: `client.withAuth(token.token)`. */
  mintPlayerToken(player: string, request: Schemas["PlayerTokenRequest"] = {}): Promise<Schemas["PlayerToken"]> {
    return this.call("mintPlayerToken", { path: { player }, body: request });
  }

  /** Refuse every token of the player issued before now (revokePlayerTokens; an admin key). */
  revokePlayerTokens(player: string): Promise<Schemas["TokenRevocation"]> {
    return this.call("revokePlayerTokens", { path: { player } });
  }

  /** A player's standings on every board (getPlayerStandings). */
  playerStandings(player: string, query: QueryParams<"getPlayerStandings"> = {}): Promise<Schemas["PlayerStandings"]> {
    return this.call("getPlayerStandings", { path: { player }, query });
  }

  // --- live streams (Server-Sent Events) ------------------------------------------------------

  /** A board's top N as it changes (GET /v1/leaderboards/{board}/live?top=N): `onTop` gets the
   * current top at once, then again each time it changes; `onReset` when the window resets;
   * `onGone` when the board is deleted (the stream ends). It reconnects with Last-Event-ID after
   * the server's `retry:` delay; `close()` or the signal ends it. See docs/guides/live.md. */
  liveTop(board: string, options: LiveTopOptions = {}, handlers: LiveTopHandlers = {}): LiveStream {
    const query: Record<string, unknown> = { top: options.top, rank_style: options.rankStyle };
    const target = this.target("/v1/leaderboards/{board}/live", { board }, query);
    return this.stream(target, options, handlers, { top: (d, info) => handlers.onTop?.(d as LiveTop, info) });
  }

  /** A player's standing as it changes (GET /v1/leaderboards/{board}/players/{player}/live?around=K):
   * `onPlayer` gets the player's rank, score, the rank before and who overtook them, and the
   * players around; at once, then on each change. The bearer may be the player's own token
   * (`options.auth`, or a client made `withAuth(token)`). As liveTop otherwise. */
  livePlayer(board: string, player: string, options: LivePlayerOptions = {}, handlers: LivePlayerHandlers = {}): LiveStream {
    const query: Record<string, unknown> = { around: options.around, rank_style: options.rankStyle };
    const target = this.target("/v1/leaderboards/{board}/players/{player}/live", { board, player }, query);
    return this.stream(target, options, handlers, { player: (d, info) => handlers.onPlayer?.(d as LivePlayer, info) });
  }

  private stream(target: string, options: LiveTopOptions | LivePlayerOptions, handlers: LiveTopHandlers | LivePlayerHandlers,
    dispatch: Record<string, (data: unknown, info: { event: string; id: string }) => void>): LiveStream {
    const auth = options.auth !== undefined ? options.auth : this.auth;
    return openStream({
      fetch: this.fetchImpl, url: this.baseUrl + target, target, headers: { ...this.headers },
      bearer: () => this.bearer(auth), options, dispatch, handlers,
    });
  }

  // --- plumbing --------------------------------------------------------------------------------

  private target(template: string, path: Record<string, unknown> | undefined, query: Record<string, unknown> | undefined): string {
    const p = template.replace(/\{([^}]+)\}/g, (_, name: string) => {
      const v = path?.[name];
      if (v === undefined || v === null) throw new TypeError(`path parameter ${name} is missing for ${template}`);
      return encodeURIComponent(String(v));
    });
    const qs = new URLSearchParams();
    for (const [k, v] of Object.entries(query ?? {})) {
      if (v === undefined || v === null) continue;
      qs.append(k, String(v));
    }
    const s = qs.toString();
    return s ? `${p}?${s}` : p;
  }

  private async bearer(auth: Auth): Promise<string | null | undefined> {
    return typeof auth === "function" ? await auth() : auth;
  }

  private async fetchOnce(method: string, target: string, headers: Record<string, string>, body: string | undefined,
    signal: AbortSignal | undefined): Promise<{ res: Response; parsed: unknown }> {
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal?.reason);
    if (signal?.aborted) controller.abort(signal.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    const timer = this.timeoutMs > 0
      ? setTimeout(() => controller.abort(new Error(`timed out after ${this.timeoutMs} ms`)), this.timeoutMs)
      : undefined;
    try {
      const init: RequestInit = { method, headers, signal: controller.signal };
      if (body !== undefined) init.body = body;
      const res = await this.fetchImpl(this.baseUrl + target, init);
      return { res, parsed: await readBody(res) }; // the timeout covers the body too
    } catch (e) {
      throw new RankdConnectionError(method, target, controller.signal.aborted ? controller.signal.reason ?? e : e);
    } finally {
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    }
  }
}

/** The body: JSON when it says so, text otherwise, undefined when empty. */
async function readBody(res: Response): Promise<unknown> {
  const text = await res.text();
  if (text === "") return undefined;
  const type = res.headers.get("Content-Type") ?? "";
  if (/^application\/(.+\+)?json\b/i.test(type)) {
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  return text;
}
