/**
 * Live streams (docs/api.md, "Live streams"; docs/guides/live.md): a board's top N and a player's
 * standing, pushed as Server-Sent Events. A browser's EventSource reads them with no library but
 * cannot send an Authorization header; this reads them with fetch and a small SSE parser, so a key
 * or a player token goes as the bearer, in Node 18 or later and in browsers alike. It reconnects
 * as EventSource does (after the server's `retry:` delay, with `Last-Event-ID`), waits longer after
 * each refusal in a row (429, 503: at least their Retry-After), and stops on `gone`, on a refusal
 * that asking again cannot change (400, 401, 403, 404), or when closed (`close()` or the signal).
 */
import type { components } from "./generated/openapi.js";
import { RankdConnectionError, RankdError, type ErrorObject } from "./errors.js";

type Schemas = components["schemas"];

// ------------------------------------------------------------------------------------------------
// The parser

/** One event of a text/event-stream, as dispatched. */
export interface SseEvent {
  /** The event's name (`event:`), "message" when it gave none. */
  event: string;
  /** Its `data:` lines, joined by "\n". */
  data: string;
  /** The last event id after this event (`id:`; it carries over from earlier events), or "" when none. */
  id: string;
}

export interface SseParserHandlers {
  onEvent(event: SseEvent): void;
  /** A `retry:` field: the reconnection delay, in ms. */
  onRetry?(ms: number): void;
  /** A comment line (`:` …), without the colon: heartbeats. */
  onComment?(text: string): void;
}

/**
 * text/event-stream parsed as the HTML standard says, fed text in chunks cut anywhere (inside a
 * line, between CR and LF, inside a field name): lines end in CRLF, LF or CR; a line starting with
 * ":" is a comment; `field: value` (one leading space of the value dropped); a blank line
 * dispatches the event, unless it had no data; `id` with a NUL is ignored; `retry` only when
 * all digits; a leading BOM is dropped. Decode bytes with a streaming TextDecoder first.
 */
export class SseParser {
  private buf = "";
  private afterCR = false;
  private started = false;
  private type = "";
  private data: string[] = [];
  private hasData = false;
  private idBuffer: string;
  private readonly handlers: SseParserHandlers;

  constructor(handlers: SseParserHandlers, lastEventId = "") {
    this.handlers = handlers;
    this.idBuffer = lastEventId;
  }

  /** The last event id as the stream set it (what a reconnection sends as Last-Event-ID). */
  get lastEventId(): string {
    return this.idBuffer;
  }

  feed(chunk: string): void {
    if (!this.started && chunk.length > 0) {
      this.started = true;
      if (chunk.charCodeAt(0) === 0xfeff) chunk = chunk.slice(1);
    }
    if (this.afterCR && chunk.length > 0) {
      if (chunk[0] === "\n") chunk = chunk.slice(1); // the LF of a CRLF cut between chunks
      this.afterCR = false;
    }
    const buf = this.buf + chunk;
    let start = 0;
    for (let i = 0; i < buf.length; i++) {
      const c = buf.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      this.line(buf.slice(start, i));
      if (c === 13) {
        if (i + 1 === buf.length) this.afterCR = true;
        else if (buf.charCodeAt(i + 1) === 10) i++;
      }
      start = i + 1;
    }
    this.buf = buf.slice(start);
  }

  /** The stream ended: an event not yet ended by a blank line is dropped (as the standard says). */
  end(): void {
    this.buf = "";
    this.afterCR = false;
    this.type = "";
    this.data = [];
    this.hasData = false;
  }

  private line(l: string): void {
    if (l === "") {
      if (this.hasData) {
        this.handlers.onEvent({ event: this.type || "message", data: this.data.join("\n"), id: this.idBuffer });
      }
      this.type = "";
      this.data = [];
      this.hasData = false;
      return;
    }
    if (l[0] === ":") {
      this.handlers.onComment?.(l.slice(1));
      return;
    }
    const colon = l.indexOf(":");
    const field = colon < 0 ? l : l.slice(0, colon);
    let value = colon < 0 ? "" : l.slice(colon + 1);
    if (value[0] === " ") value = value.slice(1);
    switch (field) {
      case "event":
        this.type = value;
        break;
      case "data":
        this.data.push(value);
        this.hasData = true;
        break;
      case "id":
        if (!value.includes("\0")) this.idBuffer = value;
        break;
      case "retry":
        if (/^[0-9]+$/.test(value)) this.handlers.onRetry?.(Number(value));
        break;
      default: // an unknown field is ignored
    }
  }
}

// ------------------------------------------------------------------------------------------------
// The events

/** `event: top`: the body GET …/entries?limit=N answers (a Page). */
export type LiveTop = Schemas["Page"];

/** `event: player` (the spec's LivePlayer): the player's rank and score (both null, and entries
 * empty, while they have no standing in the window), `previous_rank` (the stream's previous
 * event's; null in the first), `overtaken_by` (who moved past them since, still ahead) and the
 * player with up to `around` on either side, as GET …/players/{p}/around gives them. */
export type LivePlayer = Schemas["LivePlayer"];

/** `event: reset` (the spec's LiveReset): the board's window reset; the new window's top or
 * player event follows. */
export type LiveReset = Schemas["LiveReset"];

/** Where an event came from: its name and id (the Last-Event-ID a reconnection sends). */
export interface LiveEventInfo {
  event: string;
  id: string;
}

/** Why a stream ended for good. */
export type LiveEnd =
  | { reason: "closed" }
  | { reason: "gone"; error: ErrorObject }
  | { reason: "refused"; error: RankdError | Error };

export interface LiveRetryInfo {
  /** Whether the stream connects again (false: it ends, `closed` resolves with "refused"). */
  willRetry: boolean;
  /** How long it waits first, in ms. */
  delayMs: number;
  /** Failed connections in a row (1 = the first). */
  failures: number;
}

/** What every stream calls; each handler is optional. A handler that throws is reported to
 * `onError` and the stream goes on. */
export interface LiveHandlers {
  /** A connection was answered 200 (`reconnect`: not the first). */
  onOpen?(info: { reconnect: boolean }): void;
  onReset?(reset: LiveReset, info: LiveEventInfo): void;
  /** The stream was ended by the server: the board was deleted (`not_found`), or the client's
   * reads ran out (`rate_limited`: a stream costs a read a minute); the error object says which.
   * No reconnection: open another stream when it makes sense (later, for `rate_limited`). */
  onGone?(error: ErrorObject, info: LiveEventInfo): void;
  /** A connection failed or a refusal came (RankdError, with Retry-After when there was one), or
   * a handler threw; whether the stream tries again, and when. */
  onError?(error: RankdError | RankdConnectionError | Error, retry: LiveRetryInfo): void;
  /** Any other event (one a newer server sends), its data as text. */
  onEvent?(event: SseEvent): void;
}

export interface LiveTopHandlers extends LiveHandlers {
  onTop?(top: LiveTop, info: LiveEventInfo): void;
}

export interface LivePlayerHandlers extends LiveHandlers {
  onPlayer?(player: LivePlayer, info: LiveEventInfo): void;
}

/** Options of both streams. */
export interface LiveOptions {
  /** `rank_style`, as for reads: "ordinal" (the default), "competition" or "dense". */
  rankStyle?: components["parameters"]["rankStyle"];
  /** Closes the stream when aborted (as `close()`). */
  signal?: AbortSignal;
  /** Resume from this event id (a stream seen before): no event until the answer differs from
   * the one that id names. */
  lastEventId?: string;
  /** The bearer of this stream instead of the client's (a key, a player token, or a function
   * giving one, called before each connection). */
  auth?: import("./client.js").Auth;
  /** The reconnection delay until the server sends its `retry:` (ms). Default 2000. */
  retryMs?: number;
  /** The longest wait between connections after refusals in a row (the delay doubles each time,
   * from the server's `retry:`). Default 30000. */
  maxRetryMs?: number;
  /** Failed connections in a row after which the stream gives up (`refused`). Default: never. */
  maxFailures?: number;
  /** A connection that received nothing (no event, no heartbeat) for this long is dropped and
   * made again (ms; 0: never). Default 45000, three of the server's 15-s heartbeats. */
  idleTimeoutMs?: number;
}

export interface LiveTopOptions extends LiveOptions {
  /** How many from the top, 1–100 (default 10). */
  top?: number;
}

export interface LivePlayerOptions extends LiveOptions {
  /** How many on either side of the player, 0–50 (default 5). */
  around?: number;
}

/** An open stream. */
export interface LiveStream {
  /** Ends the stream (no reconnection); `closed` resolves with "closed". */
  close(): void;
  /** The id of the last event received (send it as `lastEventId` to resume later). */
  readonly lastEventId: string;
  /** "connecting" (before the first answer), "open", "reconnecting" or "closed". */
  readonly state: "connecting" | "open" | "reconnecting" | "closed";
  /** Resolves once the stream has ended for good, saying why (never rejects). */
  readonly closed: Promise<LiveEnd>;
}

/** What RankdClient hands a stream. @internal */
export interface StreamConfig {
  fetch: typeof fetch;
  url: string;
  /** The path and query, for errors. */
  target: string;
  headers: Record<string, string>;
  bearer: () => Promise<string | null | undefined>;
  options: LiveOptions;
  /** The handler of the stream's own events (top or player), by name. */
  dispatch: Record<string, (data: unknown, info: LiveEventInfo) => void>;
  handlers: LiveHandlers;
}

/** Refusals that asking again cannot change: the stream ends. */
const FINAL_STATUSES: ReadonlySet<number> = new Set([400, 401, 403, 404, 405, 406, 410, 414, 431]);

/** Opens a stream (RankdClient.liveTop and .livePlayer call it). @internal */
export function openStream(cfg: StreamConfig): LiveStream {
  const { options, handlers } = cfg;
  const controller = new AbortController(); // the stream's whole life
  let state: LiveStream["state"] = "connecting";
  let lastEventId = options.lastEventId ?? "";
  let retryMs = options.retryMs ?? 2000;
  const maxRetryMs = options.maxRetryMs ?? 30000;
  const idleTimeoutMs = options.idleTimeoutMs ?? 45000;
  let end: LiveEnd | null = null;
  let resolveClosed!: (e: LiveEnd) => void;
  const closed = new Promise<LiveEnd>((resolve) => { resolveClosed = resolve; });

  const finish = (e: LiveEnd) => {
    if (end) return;
    end = e;
    state = "closed";
    controller.abort();
    options.signal?.removeEventListener("abort", onSignal);
    resolveClosed(e);
  };
  const onSignal = () => finish({ reason: "closed" });
  if (options.signal?.aborted) finish({ reason: "closed" });
  else options.signal?.addEventListener("abort", onSignal, { once: true });

  const safely = (fn: () => void) => {
    try {
      fn();
    } catch (e) {
      try {
        handlers.onError?.(e instanceof Error ? e : new Error(String(e)), { willRetry: true, delayMs: 0, failures: 0 });
      } catch { /* a handler of errors that throws: nothing more to tell */ }
    }
  };

  const wait = (ms: number) => new Promise<void>((resolve) => {
    if (controller.signal.aborted) { resolve(); return; }
    const t = setTimeout(() => { controller.signal.removeEventListener("abort", done); resolve(); }, ms);
    const done = () => { clearTimeout(t); resolve(); };
    controller.signal.addEventListener("abort", done, { once: true });
  });

  // One connection: resolves when it ended (how), never throws.
  type Outcome = { kind: "ended" } | { kind: "gone" }
    | { kind: "failed"; error: Error; retryAfterMs: number; final: boolean; opened: boolean; answered: boolean };
  const connect = async (reconnect: boolean, resume: boolean): Promise<Outcome> => {
    const conn = new AbortController();
    const onAbort = () => conn.abort();
    controller.signal.addEventListener("abort", onAbort, { once: true });
    let idle: ReturnType<typeof setTimeout> | undefined;
    let idledOut = false;
    let opened = false;
    const touch = () => {
      if (idleTimeoutMs <= 0) return;
      if (idle !== undefined) clearTimeout(idle);
      idle = setTimeout(() => { idledOut = true; conn.abort(); }, idleTimeoutMs);
    };
    try {
      const headers: Record<string, string> = { Accept: "text/event-stream", ...cfg.headers };
      const bearer = await cfg.bearer();
      if (bearer) headers["Authorization"] = "Bearer " + bearer;
      if (resume && lastEventId !== "") headers["Last-Event-ID"] = lastEventId;
      touch();
      const res = await cfg.fetch(cfg.url, { method: "GET", headers, signal: conn.signal });
      if (res.status !== 200) {
        const text = await res.text().catch(() => "");
        let body: unknown = text;
        try { body = JSON.parse(text); } catch { /* not JSON: a proxy's page */ }
        const ra = res.headers.get("Retry-After");
        const retryAfterS = ra !== null && /^\d+$/.test(ra.trim()) ? Number(ra.trim()) : null;
        const error = new RankdError({ status: res.status, body, method: "GET", path: cfg.target, retryAfterS,
          requestId: res.headers.get("X-Request-Id") });
        return { kind: "failed", error, retryAfterMs: (retryAfterS ?? 0) * 1000, final: FINAL_STATUSES.has(res.status),
          opened: false, answered: true };
      }
      const type = res.headers.get("Content-Type") ?? "";
      if (!/^text\/event-stream\b/i.test(type) || !res.body) {
        await res.text().catch(() => "");
        return { kind: "failed", error: new Error(`GET ${cfg.target}: 200 with Content-Type ${type || "none"}, not text/event-stream`),
          retryAfterMs: 0, final: true, opened: false, answered: true };
      }
      opened = true;
      state = "open";
      safely(() => handlers.onOpen?.({ reconnect }));
      let gone = false;
      const parser = new SseParser({
        onRetry: (ms) => { retryMs = ms; },
        onEvent: (ev) => {
          if (controller.signal.aborted || gone) return;
          lastEventId = ev.id;
          const info: LiveEventInfo = { event: ev.event, id: ev.id };
          const own = cfg.dispatch[ev.event];
          if (own || ev.event === "reset" || ev.event === "gone") {
            let data: unknown;
            try {
              data = JSON.parse(ev.data);
            } catch (e) {
              safely(() => { throw new Error(`GET ${cfg.target}: event ${ev.event} with data that is not JSON`); });
              return;
            }
            if (own) safely(() => own(data, info));
            else if (ev.event === "reset") safely(() => handlers.onReset?.(data as LiveReset, info));
            else {
              gone = true;
              const err = (data as { error?: ErrorObject }).error ?? (data as ErrorObject);
              safely(() => handlers.onGone?.(err, info));
              finish({ reason: "gone", error: err });
            }
          } else {
            safely(() => handlers.onEvent?.(ev));
          }
        },
      }, lastEventId);
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        touch();
        parser.feed(decoder.decode(value, { stream: true }));
        if (gone) break;
      }
      parser.feed(decoder.decode());
      parser.end();
      if (gone) {
        reader.cancel().catch(() => {});
        return { kind: "gone" };
      }
      return { kind: "ended" };
    } catch (e) {
      const why = idledOut ? new Error(`nothing received for ${idleTimeoutMs} ms`) : e;
      return { kind: "failed", error: new RankdConnectionError("GET", cfg.target, why), retryAfterMs: 0, final: false,
        opened, answered: opened };
    } finally {
      if (idle !== undefined) clearTimeout(idle);
      controller.signal.removeEventListener("abort", onAbort);
    }
  };

  void (async () => {
    let failures = 0;
    let reconnect = false;
    // A request that got no answer at all while it carried Last-Event-ID is made once without it:
    // in a browser, a page of another origin may not be allowed to send that header (the CORS
    // preflight refuses it, and fetch fails as if the network had). Without it the server sends
    // its current answer at once: at worst one event again, a whole answer, never a lost one.
    let resume = true;
    while (!end) {
      const sent: boolean = resume && lastEventId !== "";
      const out = await connect(reconnect, resume);
      if (end) return;
      if (out.kind === "gone") return;
      reconnect = true;
      if (sent && out.kind === "failed" && !out.answered) {
        resume = false; // at once, without the header (not counted: the next attempt says)
        try { handlers.onError?.(out.error, { willRetry: true, delayMs: 0, failures }); } catch { /* nothing more to tell */ }
        continue;
      }
      resume = true;
      let delay = retryMs;
      if (out.kind === "ended") {
        failures = 0; // the server ended a stream it had answered (a stop): come back after retry:
      } else {
        if (out.opened) failures = 0; // it was answered: this break is the first failure
        failures++;
        delay = Math.max(out.retryAfterMs, Math.min(maxRetryMs, retryMs * 2 ** (failures - 1)));
        const give = out.final || (options.maxFailures !== undefined && failures >= options.maxFailures);
        const info: LiveRetryInfo = { willRetry: !give, delayMs: give ? 0 : delay, failures };
        try { handlers.onError?.(out.error, info); } catch { /* nothing more to tell */ }
        if (give) {
          finish({ reason: "refused", error: out.error });
          return;
        }
      }
      state = "reconnecting";
      await wait(delay);
    }
  })();

  return {
    close: () => finish({ reason: "closed" }),
    get lastEventId() { return lastEventId; },
    get state() { return state; },
    closed,
  };
}
