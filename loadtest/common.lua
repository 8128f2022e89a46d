-- loadtest/common.lua — shared by the wrk scenarios (each loads it with dofile).
--
-- Arguments after `--` on the wrk command line are key=value pairs:
--   board=ID players=N width=W (player ids are "p" .. N zero-padded to W digits, p000000000001…)
--   key=WRITE_KEY  zipf=S (Zipf exponent of the mix)  path=/fixed/path  limit=N  maxrank=N
--   query=a=b&c=d (added to the player reads of rank.lua and around.lua, e.g. window=2026-11-20)
-- Each wrk thread has its own Lua state: init() runs once per thread, setup() and done()
-- run in the main state. Counters are plain globals of each thread's state, summed in done().

local M = {}

local threads = {}
function M.setup(thread)
  threads[#threads + 1] = thread
  thread:set("tid", #threads)
end

function M.args(args)
  M.opt = {}
  for _, a in ipairs(args or {}) do
    local k, v = a:match("^([%w_]+)=(.*)$")
    if k then M.opt[k] = v end
  end
  M.board = M.opt.board or "big"
  M.players = tonumber(M.opt.players or "1000")
  M.key = M.opt.key or ""
  M.width = tonumber(M.opt.width or "12")
  M.fmt = "p%0" .. M.width .. "d"
  M.zipf_s = tonumber(M.opt.zipf or "1.0")
  M.base = "/v1/leaderboards/" .. M.board
  M.query = M.opt.query or ""
  math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
  for _ = 1, 10 do math.random() end
  -- counters (globals: done() reads them with thread:get)
  n_read, n_write, n_write_ok, n_write_bad, n_bad = 0, 0, 0, 0, 0
end

function M.player_n(n)
  return string.format(M.fmt, n)
end

-- The score of a write to a `desc` `best` board seeded 0..1,000,000 (seed.sql), by scores=...:
-- random (the default) 0..1,000,000, about half of them beating a best at first and fewer as a
-- player's best rises; none: 0, which beats no seeded best; all: rising above every seeded score
-- (1,000,001, 1,000,002, ... in each wrk thread: with one thread, the default, every one beats
-- the best). none and all make lone and batched writes do the same work whatever their rates.
local rising = 1000000
function M.write_score()
  local kind = M.opt.scores or "random"
  if kind == "none" then return 0 end
  if kind == "all" then
    rising = rising + 1
    return rising
  end
  return math.random(0, 1000000)
end

-- uniformly random seeded player
function M.player()
  return string.format(M.fmt, math.random(1, M.players))
end

-- Zipf(s) over 1..players by inverting the continuous CDF of x^-s on [1, players+1):
-- player k is drawn with probability close to k^-s / H(players, s).
function M.zipf_n()
  local n, s, u = M.players, M.zipf_s, math.random()
  local k
  if math.abs(s - 1) < 1e-9 then
    k = math.floor((n + 1) ^ u)
  else
    local a = 1 - s
    k = math.floor((((n + 1) ^ a - 1) * u + 1) ^ (1 / a))
  end
  if k < 1 then k = 1 elseif k > n then k = n end
  return k
end

function M.zipf_player()
  return string.format(M.fmt, M.zipf_n())
end

M.write_headers = function()
  return {
    ["Authorization"] = "Bearer " .. M.key,
    ["Content-Type"] = "application/json",
  }
end

-- Count one response: submit results carry "previous_score", nothing else does.
function M.count(status, body)
  if body and body:find('"previous_score"', 1, true) then
    if status == 200 then n_write_ok = n_write_ok + 1 else n_write_bad = n_write_bad + 1 end
  elseif status >= 400 then
    n_bad = n_bad + 1
  else
    n_read = n_read + 1
  end
end

-- occurrences of a plain string in s
local function occurrences(s, what)
  local n, at = 0, 1
  while true do
    local i = s:find(what, at, true)
    if not i then return n end
    n, at = n + 1, i + #what
  end
end

-- Count one scores:batch response: each acknowledged item is a submit result, each refused one
-- an error object.
function M.count_batch(status, body)
  if status ~= 200 or not body then
    n_bad = n_bad + 1
    return
  end
  n_write_ok = n_write_ok + occurrences(body, '"previous_score"')
  n_write_bad = n_write_bad + occurrences(body, '"error"')
end

-- One machine-readable line that loadtest/run.sh parses (latency in microseconds).
-- sample_rps: wrk's mean requests/s over its 100 ms samples, times the threads. wrk takes a
-- sample only when answers came in, so a server that stops answering for a while shows as
-- rps (overall) far below sample_rps.
-- w_ok: submissions answered 200 (acknowledged); reads: 2xx/3xx answers that were not
-- submit results (only counted by scenarios that define response()).
function M.done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  local sums = { n_read = 0, n_write = 0, n_write_ok = 0, n_write_bad = 0, n_bad = 0,
                 s_top10 = 0, s_rank = 0, s_around = 0, s_top100 = 0 }
  for _, t in ipairs(threads) do
    for k in pairs(sums) do sums[k] = sums[k] + (tonumber(t:get(k)) or 0) end
  end
  io.write(string.format(
    "RESULT requests=%d duration_s=%.3f rps=%.1f mean_us=%.0f p50_us=%d p90_us=%d p99_us=%d " ..
    "p999_us=%d max_us=%d non2xx=%d connect_err=%d read_err=%d write_err=%d timeouts=%d " ..
    "reads=%d writes_sent=%d w_ok=%d w_bad=%d bad=%d sample_rps=%.1f " ..
    "sent_top10=%d sent_rank=%d sent_around=%d sent_top100=%d\n",
    summary.requests, secs, summary.requests / secs, latency.mean,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max,
    e.status, e.connect, e.read, e.write, e.timeout,
    sums.n_read, sums.n_write, sums.n_write_ok, sums.n_write_bad, sums.n_bad,
    requests.mean * #threads, sums.s_top10, sums.s_rank, sums.s_around, sums.s_top100))
end

return M
