/**
 * @rankd/client — a typed client for rankd's REST API.
 *
 * The types come from the repository's api/openapi.json (src/generated, `npm run generate`);
 * the client around them is small: a key or a player token as the bearer, bounded retries of
 * 429/503 honouring Retry-After, cursor paging, RankdError carrying the contract's error object,
 * and the live streams (liveTop, livePlayer: Server-Sent Events over fetch, reconnecting with
 * Last-Event-ID).
 */
export { RankdClient, parseRetryAfter } from "./client.js";
export type {
  Auth, CallOptions, ClientOptions, CursorOperation, OperationId, PagingOptions, PathParams, QueryParams,
  RankdResponse, RequestBody, Result, RetryInfo, RetryPolicy, Schemas,
} from "./client.js";
export { RankdConnectionError, RankdError, isRankdError } from "./errors.js";
export { SseParser } from "./live.js";
export type {
  LiveEnd, LiveEventInfo, LiveHandlers, LiveOptions, LivePlayer, LivePlayerHandlers, LivePlayerOptions, LiveReset,
  LiveRetryInfo, LiveStream, LiveTop, LiveTopHandlers, LiveTopOptions, SseEvent, SseParserHandlers,
} from "./live.js";
export type { ErrorCode, ErrorObject } from "./errors.js";
export type { components, operations, paths } from "./generated/openapi.js";
export { routes } from "./generated/routes.js";
