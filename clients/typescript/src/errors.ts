import type { components } from "./generated/openapi.js";

/** The contract's error object: the `error` member of every 4xx/5xx body (docs/api.md, "Errors"). */
export type ErrorObject = components["schemas"]["Error"]["error"];
/** An error code of the contract (`invalid_argument`, `rate_limited`, `tournament_full`, …). */
export type ErrorCode = ErrorObject["code"];

/** The code the contract gives each status, for an answer whose body is not rankd's error object
 * (a proxy's HTML page, say). */
const CODE_OF_STATUS: Record<number, ErrorCode> = {
  400: "invalid_argument",
  401: "unauthenticated",
  403: "permission_denied",
  404: "not_found",
  405: "method_not_allowed",
  409: "conflict",
  413: "payload_too_large",
  414: "invalid_argument",
  415: "unsupported_media_type",
  422: "implausible",
  431: "invalid_argument",
  429: "rate_limited",
  503: "unavailable",
};

/** Whether `body` is `{"error":{"code","message",…}}`. */
function isErrorBody(body: unknown): body is { error: ErrorObject } {
  if (typeof body !== "object" || body === null) return false;
  const e = (body as { error?: unknown }).error;
  return typeof e === "object" && e !== null &&
    typeof (e as { code?: unknown }).code === "string" &&
    typeof (e as { message?: unknown }).message === "string";
}

/** A non-2xx answer from rankd (after any retries), carrying the contract's error object. */
export class RankdError extends Error {
  /** The HTTP status. */
  readonly status: number;
  /** The contract's error object as rankd sent it; for a body that was not one (a proxy's page),
   * one made from the status (`fromServer` false). */
  readonly error: ErrorObject;
  /** Whether `error` is the body rankd sent (false: made from the status). */
  readonly fromServer: boolean;
  /** `Retry-After` in seconds, when the answer carried one (429, 503). */
  readonly retryAfterS: number | null;
  /** The answer's `X-Request-Id`, the id in rankd's log lines of the request. */
  readonly requestId: string | null;
  /** The request: method and path (with its query). */
  readonly method: string;
  readonly path: string;

  constructor(init: {
    status: number;
    body: unknown;
    method: string;
    path: string;
    retryAfterS: number | null;
    requestId: string | null;
  }) {
    const fromServer = isErrorBody(init.body);
    const error: ErrorObject = fromServer
      ? (init.body as { error: ErrorObject }).error
      : {
          code: CODE_OF_STATUS[init.status] ?? (init.status >= 500 ? "internal" : "invalid_argument"),
          message: `HTTP ${init.status} without rankd's error object`,
        };
    super(`${init.method} ${init.path}: ${init.status} ${error.code}: ${error.message}` +
      (error.field !== undefined ? ` (field ${error.field})` : ""));
    this.name = "RankdError";
    this.status = init.status;
    this.error = error;
    this.fromServer = fromServer;
    this.retryAfterS = init.retryAfterS;
    this.requestId = init.requestId;
    this.method = init.method;
    this.path = init.path;
  }

  /** The error's code (`error.code`). */
  get code(): ErrorCode {
    return this.error.code;
  }

  /** What was wrong (`error.field`), when the answer named it. */
  get field(): string | undefined {
    return this.error.field;
  }
}

/** The request did not get an answer: refused connection, reset, DNS, timeout, abort. */
export class RankdConnectionError extends Error {
  readonly method: string;
  readonly path: string;
  constructor(method: string, path: string, cause: unknown) {
    super(`${method} ${path}: no answer from rankd (${cause instanceof Error ? cause.message : String(cause)})`,
      { cause });
    this.name = "RankdConnectionError";
    this.method = method;
    this.path = path;
  }
}

/** Whether `e` is a RankdError, with code `code` when given. */
export function isRankdError(e: unknown, code?: ErrorCode): e is RankdError {
  return e instanceof RankdError && (code === undefined || e.code === code);
}
