-- loadtest/keyed.lua — rank reads (GET /v1/leaderboards/BOARD/players/{random player}) with a
-- key, optionally paced, counting the answers by status: ratelimit.sh runs it as the client
-- that stays within its limit (key=…, pace_ms=…) and as the abuser (another key, no pace).
-- write=1: submissions instead (POST /v1/leaderboards/BOARD/scores, a random player and score),
-- as abuse.sh's writing client.
-- done() prints "statuses 200=N 429=N other=N".
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local c = dofile(dir .. "common.lua")
local threads = {}
function setup(thread)
  threads[#threads + 1] = thread
  thread:set("tid", #threads)
end

local prefix, headers, pace, write
function init(args)
  c.args(args)
  write = c.opt.write == "1"
  prefix = c.base .. "/players/"
  headers = write and c.write_headers() or {["Authorization"] = "Bearer " .. c.key}
  pace = tonumber(c.opt.pace_ms or "0")
  n_200, n_429, n_other = 0, 0, 0
end

function request()
  if write then
    local body = string.format('{"player_id":"%s","score":%d}', c.player(), math.random(0, 1000000))
    return wrk.format("POST", c.base .. "/scores", headers, body)
  end
  return wrk.format("GET", prefix .. c.player(), headers)
end

-- wrk waits this long after an answer before the connection's next request
function delay()
  return pace
end

function response(status)
  if status == 200 then n_200 = n_200 + 1
  elseif status == 429 then n_429 = n_429 + 1
  else n_other = n_other + 1 end
end

function done()
  local a, b, o = 0, 0, 0
  for _, t in ipairs(threads) do
    a, b, o = a + t:get("n_200"), b + t:get("n_429"), o + t:get("n_other")
  end
  io.write(string.format("statuses 200=%d 429=%d other=%d\n", a, b, o))
end
