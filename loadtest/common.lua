-- loadtest/common.lua — shared by the wrk scenarios (loaded with dofile).
-- Arguments after `--` on the wrk command line: BOARD PLAYERS [WRITE_KEY].
-- Each wrk thread has its own Lua state: init() runs once per thread.

local M = {}

local counter = 0
function M.setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
end

function M.args(args)
  M.board = args[1] or "load"
  M.players = tonumber(args[2] or "100000")
  M.key = args[3]
  M.width = math.max(6, #tostring(M.players))
  math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
  for _ = 1, 10 do math.random() end
end

function M.player()
  return string.format("p%0" .. M.width .. "d", math.random(1, M.players))
end

-- One machine-readable line that loadtest/run.sh parses (latency in microseconds).
function M.done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format(
    "RESULT requests=%d duration_s=%.3f rps=%.1f p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
    "non2xx=%d connect_err=%d read_err=%d write_err=%d timeouts=%d\n",
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    e.status, e.connect, e.read, e.write, e.timeout))
end

return M
