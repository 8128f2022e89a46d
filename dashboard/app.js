// rankd dashboard: plain JavaScript over rankd's public API. The key the operator types is kept
// in this tab's sessionStorage only and sent as a Bearer token to this server alone. Where reads
// are public it shows the boards with no key; the address follows what is open
// (#/boards/{board}, #/boards/{board}/players/{player}), so a link opens that view.
"use strict";

const state = { board: null, window: "current", cursor: null, prevCursor: null, nextCursor: null,
                boardsCursor: null, lastSample: null, firstPage: true, entriesSeq: 0, liveDrawn: false };

// The entries table shows this many per page; the live stream asks for as many.
const PAGE = 20;

function key() { return sessionStorage.getItem("rankd-key") || ""; }

async function api(path) {
  const headers = {};
  if (key()) headers.Authorization = "Bearer " + key();
  const r = await fetch(path, { headers, cache: "no-store" });
  const text = await r.text();
  let body = null;
  try { body = JSON.parse(text); } catch (e) { body = text; }
  if (!r.ok && !(path === "/readyz" && r.status === 503)) {
    const msg = body && body.error ? body.error.message : "HTTP " + r.status;
    const err = new Error(path.split("?")[0] + ": " + msg);
    err.status = r.status;
    throw err;
  }
  return body;
}

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}

function showError(e) {
  const p = document.getElementById("error");
  if (!e) { p.hidden = true; p.textContent = ""; return; }
  p.hidden = false;
  p.textContent = e.message || String(e);
}

function fill(tableId, rows, onPick) {
  const body = document.querySelector("#" + tableId + " tbody");
  body.replaceChildren();
  for (const r of rows) {
    const tr = el("tr");
    for (const c of r.cells) tr.appendChild(el("td", c));
    if (r.cls) tr.className = r.cls;
    if (onPick) { tr.classList.add("pick"); tr.addEventListener("click", () => onPick(r.value)); }
    body.appendChild(tr);
  }
}

// A player's metadata as the API holds it (compact JSON), or nothing.
function meta(e) { return e.metadata === undefined ? "" : JSON.stringify(e.metadata); }

function entryRows(entries, me) {
  return entries.map(e => ({ cells: [e.rank, e.player_id, e.score, e.achieved_at, meta(e)],
                             cls: e.player_id === me ? "me" : "" }));
}

// ------------------------------------------------------------------ the address: what is open

function boardHash(board, player) {
  return "#/boards/" + encodeURIComponent(board) + (player ? "/players/" + encodeURIComponent(player) : "");
}

// The view the address names: {board, player}, or null.
function parseHash() {
  const m = location.hash.match(/^#\/boards\/([^/]+)(?:\/players\/([^/]+))?$/);
  if (!m) return null;
  try {
    return { board: decodeURIComponent(m[1]), player: m[2] ? decodeURIComponent(m[2]) : null };
  } catch (e) { return null; }
}

// Opening something sets the address; a link (or Back) sets the address, which opens it.
function follow(board, player) {
  const h = boardHash(board, player);
  if (location.hash !== h) history.pushState(null, "", h);
}

async function route() {
  const v = parseHash();
  if (!v) return;
  if (!state.board || state.board.id !== v.board) await openBoard(v.board, true);
  if (v.player) {
    document.getElementById("player").value = v.player;
    await findPlayer(v.player, true);
  }
}

// ------------------------------------------------------------------ boards

async function loadBoards(more) {
  const q = "/v1/leaderboards?limit=50" + (more && state.boardsCursor ? "&cursor=" + encodeURIComponent(state.boardsCursor) : "");
  const page = await api(q);
  state.boardsCursor = page.next_cursor;
  const rows = page.leaderboards.map(b => ({ cells: [b.id, b.title, b.sort, b.operator, b.reset, b.players], value: b.id }));
  fill("boards", rows, id => openBoard(id).catch(showError));
  document.getElementById("boards-need-key").hidden = true;
  document.getElementById("boards-more").hidden = !page.next_cursor;
}

async function openBoard(id, fromAddress) {
  const b = await api("/v1/leaderboards/" + encodeURIComponent(id));
  state.board = b;
  if (!fromAddress) follow(b.id, null);
  state.window = "current";
  state.cursor = null;
  state.firstPage = true;
  document.getElementById("board").hidden = false;
  document.getElementById("board-title").textContent = b.title + " (" + b.id + ")";
  boardInfo(b);
  document.getElementById("player-result").textContent = "";
  document.getElementById("export-info").textContent = "";
  fill("around", []);
  if (live.board !== b.id || !live.stream) openLive(b.id);
  await loadWindows();
  await Promise.all([loadEntries(null), loadStats(), loadActivity()]);
}

function boardInfo(b) {
  document.getElementById("board-info").textContent = "sort " + b.sort + ", operator " + b.operator + ", reset " + b.reset +
    ", current window " + b.current_window + ", " + b.players + " players";
}

function boardPath(rest) { return "/v1/leaderboards/" + encodeURIComponent(state.board.id) + rest; }
function windowParam() { return "window=" + encodeURIComponent(state.window); }

async function loadWindows() {
  const w = await api(boardPath("/windows?limit=50"));
  fill("windows", w.windows.map(x => ({ cells: [x.window, x.players, x.submissions] })));
  const sel = document.getElementById("window");
  sel.replaceChildren();
  const cur = el("option", "current");
  cur.value = "current";
  sel.appendChild(cur);
  for (const x of w.windows) {
    if (x.window === state.board.current_window) continue;
    const o = el("option", x.window);
    o.value = x.window;
    sel.appendChild(o);
  }
  sel.value = state.window;
}

async function loadEntries(cursor) {
  const seq = ++state.entriesSeq;
  const page = await api(boardPath("/entries?limit=" + PAGE + "&" + windowParam() + (cursor ? "&cursor=" + encodeURIComponent(cursor) : "")));
  // A live top drawn while this read was on its way is newer than its answer: keep it.
  if (seq !== state.entriesSeq) return;
  // So is one drawn before this read was sent: the stream hears a commit from PostgreSQL, and a
  // read can be answered from a store the same write reaches a moment later (Redis), so a read
  // sent after an event may show the top before it. While the stream draws the first page of the
  // current window, it alone does.
  if (!cursor && state.window === "current" && state.liveDrawn) { state.firstPage = true; liveIndicator(); return; }
  state.liveDrawn = false;
  state.firstPage = !cursor;
  renderEntries(page);
  liveIndicator();
}

function renderEntries(page) {
  state.prevCursor = page.prev_cursor;
  state.nextCursor = page.next_cursor;
  fill("entries", entryRows(page.entries));
  document.getElementById("prev").disabled = !page.prev_cursor;
  document.getElementById("next").disabled = !page.next_cursor;
  const first = page.entries.length ? page.entries[0].rank : 0;
  const last = page.entries.length ? page.entries[page.entries.length - 1].rank : 0;
  document.getElementById("page-info").textContent = page.entries.length ?
    "ranks " + first + "–" + last + " of " + page.total + " (window " + page.window + ")" : "no entries (window " + page.window + ")";
}

async function findPlayer(id, fromAddress) {
  const out = document.getElementById("player-result");
  if (!fromAddress) follow(state.board.id, id);
  try {
    const s = await api(boardPath("/players/" + encodeURIComponent(id) + "?" + windowParam()));
    out.textContent = s.player_id + ": rank " + s.rank + " of " + s.total + ", score " + s.score + ", top " + s.top_percent + " %" +
      (s.metadata === undefined ? "" : ", metadata " + meta(s));
    out.dataset.rank = String(s.rank);
    const around = await api(boardPath("/players/" + encodeURIComponent(id) + "/around?before=5&after=5&" + windowParam()));
    fill("around", entryRows(around.entries, s.player_id));
  } catch (e) {
    out.dataset.rank = "";
    fill("around", []);
    if (e.status === 404) { out.textContent = id + " has no standing in this window"; return; }
    throw e;
  }
}

// ------------------------------------------------------------------ charts (SVG, drawn here)

const SVG = "http://www.w3.org/2000/svg";
function svgEl(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = String(text);
  return e;
}

function drawBars(svg, labels, values) {
  svg.replaceChildren();
  const W = 600, H = 200, pad = 24, n = values.length;
  const max = Math.max(1, ...values);
  if (!n) { svg.appendChild(svgEl("text", { x: 10, y: 20 }, "no data")); return; }
  const bw = (W - 2 * pad) / n;
  values.forEach((v, i) => {
    const h = (H - 2 * pad) * v / max;
    const r = svgEl("rect", { x: pad + i * bw + 1, y: H - pad - h, width: Math.max(1, bw - 2), height: h });
    r.appendChild(svgEl("title", {}, labels[i] + ": " + v));
    svg.appendChild(r);
  });
  axisLabels(svg, W, H, pad, labels, max);
}

// The first and last labels under the chart, each kept inside it whatever its length (anchored
// at the edge it stands by), and the largest value at the top.
function axisLabels(svg, W, H, pad, labels, max) {
  svg.appendChild(svgEl("text", { x: pad, y: H - 6, "text-anchor": "start" }, labels[0]));
  if (labels.length > 1)
    svg.appendChild(svgEl("text", { x: W - pad, y: H - 6, "text-anchor": "end" }, labels[labels.length - 1]));
  svg.appendChild(svgEl("text", { x: 2, y: 14 }, max));
}

function drawLine(svg, labels, values) {
  svg.replaceChildren();
  const W = 600, H = 200, pad = 24, n = values.length;
  if (!n) { svg.appendChild(svgEl("text", { x: 10, y: 20 }, "no data")); return; }
  const max = Math.max(1, ...values);
  const x = i => pad + (n === 1 ? 0 : (W - 2 * pad) * i / (n - 1));
  const y = v => H - pad - (H - 2 * pad) * v / max;
  svg.appendChild(svgEl("polyline", { points: values.map((v, i) => x(i) + "," + y(v)).join(" ") }));
  axisLabels(svg, W, H, pad, labels, max);
}

function num(v) { return Number.isInteger(v) ? String(v) : Number(v).toFixed(2); }

async function loadStats() {
  const s = await api(boardPath("/stats?" + windowParam()));
  document.getElementById("stats-summary").textContent = s.players ?
    s.players + " players, " + s.submissions + " submissions, min " + s.min + ", max " + s.max + ", mean " +
    num(s.mean) + ", p50 " + num(s.percentiles.p50) + ", p99 " + num(s.percentiles.p99) +
    (s.refreshed_at ? " (refreshed " + s.refreshed_at + ")" : "") : "no statistics yet (window " + s.window + ")";
  drawBars(document.getElementById("histogram"), s.histogram.map(b => b.lower + "–" + b.upper), s.histogram.map(b => b.count));
}

async function loadActivity() {
  const a = await api(boardPath("/activity"));
  drawLine(document.getElementById("activity"), a.days.map(d => d.day), a.days.map(d => d.submissions));
}

// ------------------------------------------------------------------ the live top

// The open board's top follows GET /v1/leaderboards/{board}/live?top=20 (Server-Sent Events). With
// no key the browser's EventSource reads it (public reads); with a key typed, EventSource cannot
// send the Authorization header, so the page reads the same stream with fetch() and parses it
// itself. One stream at a time: it closes when another board is opened or the page hides, and
// opens again when the page shows. The events apply to the table while it shows the first page of
// the current window. window.rankdLive counts what arrived, and by which way (for the tests).
const live = { stream: null, board: null, state: "off", again: null, goneBoard: null };
window.rankdLive = { via: null, events: 0, eventsource: 0, fetch: 0, opened: 0 };

function liveIndicator() {
  const span = document.getElementById("live");
  if (!span) return;
  let st = live.state;
  if (st === "connected" && !(state.window === "current" && state.firstPage)) st = "paused";
  const words = { off: "", connecting: "live: connecting…", connected: "● live", reconnecting: "live: reconnecting…",
                  paused: "live (first page of the current window only)", gone: "live: the board was deleted",
                  limited: "live: paused, reads used up (again in a minute)" };
  span.textContent = words[st] || "";
  span.className = "live " + st;
  span.dataset.state = st;
  span.dataset.via = window.rankdLive.via || "";
}

function liveState(st) {
  live.state = st;
  liveIndicator();
}

function onLiveTop(data, via) {
  let page;
  try { page = JSON.parse(data); } catch (e) { return; }
  window.rankdLive.events++;
  window.rankdLive[via]++;
  liveState("connected");
  if (!state.board || page.board !== state.board.id || state.window !== "current" || !state.firstPage) return;
  state.entriesSeq++;  // a read of the first page still on its way is older than this
  state.liveDrawn = true;
  renderEntries(page);
}

// The board's window reset: the new window's top follows on the stream; the board's facts, its
// windows and statistics are read again.
function onLiveReset() {
  if (!state.board) return;
  const id = state.board.id;
  api("/v1/leaderboards/" + encodeURIComponent(id)).then(async (b) => {
    if (!state.board || state.board.id !== id) return;
    state.board = b;
    boardInfo(b);
    await Promise.all([loadWindows(), loadStats()]);
  }).catch(showError);
}

// The server ended the stream: the board was deleted (not_found), or this client's reads ran out
// (rate_limited: a stream costs a read a minute), when the page tries again a minute later.
function onLiveGone(data) {
  let code = "not_found";
  try { code = JSON.parse(data).error.code; } catch (e) { /* not the error object: as deleted */ }
  const board = live.board;
  closeLive();
  if (code === "rate_limited") {
    liveState("limited");
    live.again = setTimeout(() => {
      if (state.board && state.board.id === board && !live.stream) openLive(board);
    }, 60000);
  } else {
    live.goneBoard = board;  // not opened again by the page showing (only by opening the board)
    liveState("gone");
  }
}

function closeLive() {
  if (live.again) clearTimeout(live.again);
  live.again = null;
  if (live.stream) live.stream.close();
  live.stream = null;
  live.board = null;
  state.liveDrawn = false;  // reads draw the top again until a new stream's first event
  liveState("off");
}

function openLive(board) {
  closeLive();
  live.goneBoard = null;
  if (document.hidden) return;
  live.board = board;
  window.rankdLive.opened++;
  const url = "/v1/leaderboards/" + encodeURIComponent(board) + "/live?top=" + PAGE;
  liveState("connecting");
  live.stream = key() ? fetchStream(url, key()) : eventSourceStream(url);
}

// EventSource: it reconnects by itself (after the server's retry:, with Last-Event-ID) while the
// connection breaks; a refusal (429, 503, a board gone) closes it, and the page tries again later.
function eventSourceStream(url) {
  window.rankdLive.via = "eventsource";
  let es = null, timer = null, closed = false;
  const connect = () => {
    timer = null;
    es = new EventSource(url);
    es.addEventListener("open", () => liveState("connected"));
    es.addEventListener("top", (e) => onLiveTop(e.data, "eventsource"));
    es.addEventListener("reset", () => onLiveReset());
    es.addEventListener("gone", (e) => onLiveGone(e.data));
    es.addEventListener("error", () => {
      if (closed) return;
      liveState("reconnecting");
      if (es.readyState === EventSource.CLOSED) { es = null; timer = setTimeout(connect, 10000); }
    });
  };
  connect();
  return { close() { closed = true; if (timer) clearTimeout(timer); if (es) es.close(); } };
}

// fetch() with the key as the bearer, and an SSE parser over its body: reconnects after the
// server's retry: (or Retry-After) with Last-Event-ID, as EventSource would.
function fetchStream(url, bearer) {
  window.rankdLive.via = "fetch";
  const ctrl = new AbortController();
  let lastId = null, retry = 2000;
  const wait = (ms) => new Promise(resolve => {
    const t = setTimeout(resolve, ms);
    ctrl.signal.addEventListener("abort", () => { clearTimeout(t); resolve(); }, { once: true });
  });
  (async () => {
    while (!ctrl.signal.aborted) {
      let delay = retry;
      try {
        const headers = { Accept: "text/event-stream", Authorization: "Bearer " + bearer };
        if (lastId !== null) headers["Last-Event-ID"] = lastId;
        const r = await fetch(url, { headers, cache: "no-store", signal: ctrl.signal });
        if (r.status !== 200 || !r.body) {
          const text = await r.text().catch(() => "");
          if (r.status === 404) { onLiveGone(null); return; }
          if (r.status === 400 || r.status === 401 || r.status === 403) {  // asking again cannot change it
            let msg = "HTTP " + r.status;
            try { msg = JSON.parse(text).error.message; } catch (e) { /* not the API's error object */ }
            closeLive();
            showError(new Error("live: " + msg));
            return;
          }
          const after = Number(r.headers.get("Retry-After"));
          delay = Math.max(retry, after > 0 ? after * 1000 : 10000);
        } else {
          liveState("connected");
          const parser = sseParser((ev) => {
            if (ctrl.signal.aborted) return;
            if (ev.type === "top") onLiveTop(ev.data, "fetch");
            else if (ev.type === "reset") onLiveReset();
            else if (ev.type === "gone") { onLiveGone(ev.data); ctrl.abort(); }
          }, (id) => { lastId = id; }, (ms) => { retry = ms; });
          const reader = r.body.getReader();
          const dec = new TextDecoder();
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            parser(dec.decode(value, { stream: true }));
          }
        }
      } catch (e) {
        if (ctrl.signal.aborted) return;
      }
      if (ctrl.signal.aborted) return;
      liveState("reconnecting");
      await wait(delay);
    }
  })();
  return { close() { ctrl.abort(); } };
}

// text/event-stream, parsed as the HTML standard says: lines end in CRLF, LF or CR (a chunk may
// end between CR and LF); ':' starts a comment; a blank line dispatches the event.
function sseParser(onEvent, onId, onRetry) {
  let buf = "", type = "", data = [], sawCR = false, first = true;
  const line = (l) => {
    if (l === "") {
      if (data.length) onEvent({ type: type || "message", data: data.join("\n") });
      type = ""; data = [];
      return;
    }
    if (l[0] === ":") return;
    const i = l.indexOf(":");
    const field = i < 0 ? l : l.slice(0, i);
    let value = i < 0 ? "" : l.slice(i + 1);
    if (value[0] === " ") value = value.slice(1);
    if (field === "event") type = value;
    else if (field === "data") data.push(value);
    else if (field === "id") { if (!value.includes("\0")) onId(value); }
    else if (field === "retry") { if (/^\d+$/.test(value)) onRetry(Number(value)); }
  };
  return (chunk) => {
    if (first && chunk) { if (chunk[0] === "\ufeff") chunk = chunk.slice(1); first = false; }
    if (sawCR && chunk[0] === "\n") chunk = chunk.slice(1);
    sawCR = false;
    buf += chunk;
    let start = 0;
    for (let i = 0; i < buf.length; i++) {
      const c = buf[i];
      if (c !== "\n" && c !== "\r") continue;
      line(buf.slice(start, i));
      if (c === "\r") {
        if (i + 1 === buf.length) sawCR = true;
        else if (buf[i + 1] === "\n") i++;
      }
      start = i + 1;
    }
    buf = buf.slice(start);
  };
}

// ------------------------------------------------------------------ service health

function parseMetrics(text) {
  const series = [];
  for (const line of text.split("\n")) {
    if (!line || line[0] === "#") continue;
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)/);
    if (!m) continue;
    const labels = {};
    if (m[3]) for (const p of m[3].matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)) labels[p[1]] = p[2];
    series.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return series;
}

function sum(series, name, pred) {
  return series.filter(s => s.name === name && (!pred || pred(s.labels))).reduce((a, s) => a + s.value, 0);
}

// The q-quantile of request durations from the cumulative histogram buckets (all routes).
function quantile(series, q) {
  const byLe = new Map();
  for (const s of series) if (s.name === "rankd_http_request_duration_seconds_bucket")
    byLe.set(s.labels.le, (byLe.get(s.labels.le) || 0) + s.value);
  const les = [...byLe.keys()].filter(l => l !== "+Inf").map(Number).sort((a, b) => a - b);
  const total = byLe.get("+Inf") || 0;
  if (!total) return null;
  for (const le of les) if (byLe.get(String(le)) >= q * total) return le;
  return Infinity;
}

function card(title, value) {
  const d = el("div", null, "card");
  d.appendChild(el("span", title, "muted"));
  d.appendChild(el("b", value));
  return d;
}

async function loadHealth() {
  const ready = await api("/readyz");
  const cards = [card("ready", ready.status)];
  try {
    // /metrics, and /readyz's nodes, are the admin key's: without a key, not even asked.
    if (!key()) throw Object.assign(new Error("no key"), { status: 401 });
    const m = parseMetrics(await api("/metrics"));
    const now = Date.now();
    const requests = sum(m, "rankd_http_requests_total");
    let rate = "–";
    // A counter that went down is another process (a restart, or another instance behind a
    // balancer): no rate until the next sample of this one.
    if (state.lastSample && requests >= state.lastSample.requests && now > state.lastSample.at)
      rate = ((requests - state.lastSample.requests) * 1000 / (now - state.lastSample.at)).toFixed(1);
    state.lastSample = { at: now, requests };
    const hits = sum(m, "rankd_l1_hits_total"), misses = sum(m, "rankd_l1_misses_total");
    const fmt = v => v === null ? "–" : v === Infinity ? "> 2.5 s" : (v * 1000) + " ms";
    cards.push(card("requests/s", rate), card("p50 latency ≤", fmt(quantile(m, 0.5))),
               card("p99 latency ≤", fmt(quantile(m, 0.99))),
               card("L1 hit ratio", hits + misses ? (100 * hits / (hits + misses)).toFixed(1) + " %" : "–"),
               card("redis", sum(m, "rankd_redis_up") === 1 ? "up" : "down"));
  } catch (e) {
    cards.push(card("metrics", e.status === 401 || e.status === 403 ? "need an admin key" : "unavailable"));
  }
  document.getElementById("health").replaceChildren(...cards);
  fill("nodes", (ready.nodes || []).map(n => ({ cells: [n.name, n.role, n.state, n.lag_ms, n.lag_bytes, n.pool_in_use + "/" + n.pool_size],
                                                  cls: n.state })));
}

// ------------------------------------------------------------------ wiring

async function refresh() {
  showError(null);
  document.getElementById("key-state").textContent = key() ? "key set" : "no key (public reads only)";
  await Promise.all([loadHealth(), loadBoards(false)]);
  if (state.board) await openBoard(state.board.id, true);
}

// Without a key typed: the boards where reads are public; otherwise a word that a key is needed.
// The server says which first (config.json): a read refused for want of a key would be an error
// in the browser's console.
async function start() {
  loadHealth().catch(showError);
  const cfg = await api("/dashboard/config.json");
  if (!cfg.public_reads) {
    document.getElementById("key-state").textContent = "reads need a key: type it and press Use";
    document.getElementById("boards-need-key").hidden = false;
    return;
  }
  document.getElementById("key-state").textContent = "no key (public reads); type one for more";
  await loadBoards(false);
  await route();
}

// ------------------------------------------------------------------ export

// The window open, as CSV, saved by the browser. A link cannot carry the key, so the page fetches
// the export with it and hands the bytes over as a file (the API streams it; the page holds it).
async function exportWindow() {
  const info = document.getElementById("export-info");
  info.textContent = "exporting…";
  const headers = {};
  if (key()) headers.Authorization = "Bearer " + key();
  const r = await fetch(boardPath("/export?format=csv&" + windowParam()), { headers, cache: "no-store" });
  if (!r.ok) {
    info.textContent = "";
    let msg = "HTTP " + r.status;
    try { msg = (await r.json()).error.message; } catch (e) { /* not the API's error object */ }
    throw new Error("export: " + msg + (r.status === 401 || r.status === 403 ? " (exports need an admin key)" : ""));
  }
  const blob = await r.blob();
  const named = (r.headers.get("Content-Disposition") || "").match(/filename="([^"]+)"/);
  const name = named ? named[1] : state.board.id + ".csv";
  const rows = (await blob.text()).split("\r\n").filter(l => l !== "").length - 1;
  const a = el("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 60000);
  info.textContent = name + ": " + rows + " rows";
  info.dataset.rows = String(rows);
}

function guard(fn) { return (ev) => { if (ev) ev.preventDefault(); Promise.resolve(fn(ev)).catch(showError); }; }

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("key-form").addEventListener("submit", guard(() => {
    sessionStorage.setItem("rankd-key", document.getElementById("key").value.trim());
    document.getElementById("key").value = "";
    closeLive();  // the stream again with the new key (fetch) or none (EventSource)
    return refresh();
  }));
  document.getElementById("boards-more").addEventListener("click", guard(() => loadBoards(true)));
  document.getElementById("prev").addEventListener("click", guard(() => loadEntries(state.prevCursor)));
  document.getElementById("next").addEventListener("click", guard(() => loadEntries(state.nextCursor)));
  document.getElementById("window").addEventListener("change", guard(async () => {
    state.window = document.getElementById("window").value;
    state.liveDrawn = false;
    liveIndicator();
    await Promise.all([loadEntries(null), loadStats()]);
  }));
  document.getElementById("export").addEventListener("click", guard(exportWindow));
  document.getElementById("player-form").addEventListener("submit", guard(() => {
    const id = document.getElementById("player").value.trim();
    return id ? findPlayer(id) : null;
  }));
  // A hidden page holds no stream; shown again, it opens the board's anew.
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) closeLive();
    else if (state.board && !live.stream && live.goneBoard !== state.board.id) openLive(state.board.id);
  });
  window.addEventListener("pagehide", () => closeLive());
  window.addEventListener("pageshow", (e) => {
    if (e.persisted && state.board && !live.stream && live.goneBoard !== state.board.id) openLive(state.board.id);
  });
  window.addEventListener("popstate", guard(route));
  window.addEventListener("hashchange", guard(route));
  if (sessionStorage.getItem("rankd-key") !== null) refresh().then(route).catch(showError);
  else start().catch(showError);
  setInterval(() => loadHealth().catch(() => {}), 5000);
});
