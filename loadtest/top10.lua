-- loadtest/top10.lua — GET /v1/leaderboards/BOARD/entries?limit=10 (the hot top of a board).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local c = dofile(dir .. "common.lua")
setup = c.setup
done = c.done

function init(args)
  c.args(args)
  -- a fixed request: wrk builds it once and replays it
  wrk.method = "GET"
  wrk.path = "/v1/leaderboards/" .. c.board .. "/entries?limit=10"
end
