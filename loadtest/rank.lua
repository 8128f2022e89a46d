-- loadtest/rank.lua — GET /v1/leaderboards/BOARD/players/pNNNNNN for random seeded players.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local c = dofile(dir .. "common.lua")
setup = c.setup
done = c.done

local prefix
function init(args)
  c.args(args)
  prefix = "/v1/leaderboards/" .. c.board .. "/players/"
end

function request()
  return wrk.format("GET", prefix .. c.player())
end
