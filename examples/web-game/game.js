// examples/web-game/game.js — the page's game: get a player token from the game's backend
// (POST /session, same origin), play a round, submit the score to rankd from the browser with
// that token (cross-origin: rankd's http.cors_origins must list this page's origin), and show
// the top 10 and the players around you. No build step: the client is @rankd/client's built
// ES modules, served by the backend under /client/.
import { RankdClient, RankdError } from "./client/index.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const SECONDS = Math.min(60, Math.max(1, Number(params.get("seconds")) || 5));
$("seconds").textContent = String(SECONDS);

let config;          // {rankd_url, board} from the backend
let session = null;  // {token, player_id, expires_at}
let player = null;

function state(s, message = "") {
  document.body.dataset.state = s;
  $("status").textContent = message;
}

/** A failure shown on the page: rankd's error object when it sent one. */
function fail(what, e) {
  const msg = e instanceof RankdError ? `${e.error.message} (${e.code})` : e instanceof Error ? e.message : String(e);
  state("error", `${what}: ${msg}`);
}

/** A player token from the game's backend, which holds the write key. */
async function login(name) {
  const r = await fetch("session", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ player_id: name }),
  });
  const body = await r.json();
  if (r.status !== 201) throw new Error(body?.error?.message ?? `the backend answered ${r.status}`);
  return body;
}

// The bearer is a function: a token about to expire is renewed before the request.
async function bearer() {
  if (session && Date.parse(session.expires_at) - Date.now() < 30_000) session = await login(player);
  return session?.token;
}

function render(list, entries) {
  list.replaceChildren(...entries.map((e) => {
    const li = document.createElement("li");
    li.dataset.player = e.player_id;
    li.dataset.rank = String(e.rank);
    li.dataset.score = String(e.score);
    if (e.player_id === player) li.className = "me";
    for (const [cls, text] of [["rank", `#${e.rank}`], ["name", e.player_id], ["score", String(e.score)]]) {
      const span = document.createElement("span");
      span.className = cls;
      span.textContent = text;
      li.append(span);
    }
    return li;
  }));
}

async function showBoards(client) {
  const [top, around] = await Promise.all([
    client.top(config.board, 10),
    player ? client.around(config.board, player, { before: 4, after: 4 }) : null,
  ]);
  render($("top"), top);
  if (around) {
    render($("around"), around.entries);
    $("around-panel").hidden = false;
  }
}

function playRound(client) {
  let taps = 0;
  $("taps").textContent = "0";
  $("start").disabled = true;
  $("tap").disabled = false;
  state("playing", "Go!");
  const end = Date.now() + SECONDS * 1000;
  const tick = setInterval(() => { $("left").textContent = String(Math.max(0, Math.ceil((end - Date.now()) / 1000))); }, 200);
  $("tap").onclick = () => { taps++; $("taps").textContent = String(taps); };
  setTimeout(async () => {
    clearInterval(tick);
    $("left").textContent = "0";
    $("tap").disabled = true;
    $("tap").onclick = null;
    state("submitting", `Submitting ${taps}…`);
    try {
      const result = await client.submitScore(config.board, { player_id: player, score: taps });
      await showBoards(client);
      const best = result.updated ? "a new best" : `your best is ${result.score}`;
      state("done", `${taps} taps: rank ${result.rank} of the board, ${best}.`);
      document.body.dataset.submitted = String(taps);
    } catch (e) {
      fail("Submitting the score failed", e);
    } finally {
      $("start").disabled = false;
    }
  }, SECONDS * 1000);
}

async function main() {
  config = await (await fetch("config.json")).json();
  // Before signing in, the board as anyone sees it (where reads are public).
  const anon = new RankdClient({ baseUrl: config.rankd_url, retry: { retries: 2, maxWaitMs: 5000 } });
  state("login", "");
  showBoards(anon).catch((e) => fail("Reading the board failed", e));

  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const name = $("player").value.trim();
    $("login-button").disabled = true;
    state("signing-in", "Signing in…");
    try {
      player = name;
      session = await login(name);
      const client = new RankdClient({ baseUrl: config.rankd_url, auth: bearer, retry: { retries: 2, maxWaitMs: 5000 } });
      $("me").textContent = name;
      $("login").hidden = true;
      $("game").hidden = false;
      $("start").onclick = () => playRound(client);
      state("ready", "Ready when you are.");
    } catch (e) {
      player = null;
      fail("Signing in failed", e);
    } finally {
      $("login-button").disabled = false;
    }
  });
}

main().catch((e) => fail("Starting the game failed", e));
