-- loadtest/cohort.lua — GET /v1/leaderboards/BOARD/players/{random seeded player}/cohort: a
-- league player's whole cohort, ranked among itself (issue 31).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local c = dofile(dir .. "common.lua")
setup = c.setup
done = c.done

local prefix
function init(args)
  c.args(args)
  prefix = c.base .. "/players/"
end

function request()
  return wrk.format("GET", prefix .. c.player() .. "/cohort" .. (c.query ~= "" and "?" .. c.query or ""))
end
