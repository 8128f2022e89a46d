-- loadtest/submit.lua — POST /v1/leaderboards/BOARD/scores for random seeded players
-- (scores 0..1,000,000 like the seed, so about half the submissions improve a best score).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local c = dofile(dir .. "common.lua")
setup = c.setup
done = c.done

local path, headers
function init(args)
  c.args(args)
  path = "/v1/leaderboards/" .. c.board .. "/scores"
  headers = {
    ["Authorization"] = "Bearer " .. (c.key or ""),
    ["Content-Type"] = "application/json",
  }
end

function request()
  local body = string.format('{"player_id":"%s","score":%d}', c.player(), math.random(0, 1000000))
  return wrk.format("POST", path, headers, body)
end
