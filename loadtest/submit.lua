-- loadtest/submit.lua — writes only: POST /v1/leaderboards/BOARD/scores with the write key,
-- {"player_id": uniformly random seeded player, "score": 0..1,000,000} (about half the
-- submissions improve a `best` score). Counts the 200 answers: run.sh compares them with
-- the rows that reached the `submissions` table.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local c = dofile(dir .. "common.lua")
setup = c.setup
done = c.done

local path, headers
function init(args)
  c.args(args)
  path = c.base .. "/scores"
  headers = c.write_headers()
end

function request()
  n_write = n_write + 1
  local body = string.format('{"player_id":"%s","score":%d}', c.player(), math.random(0, 1000000))
  return wrk.format("POST", path, headers, body)
end

function response(status, headers, body)
  c.count(status, body)
end
