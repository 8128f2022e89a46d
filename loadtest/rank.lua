-- loadtest/rank.lua — GET /v1/leaderboards/BOARD/players/{uniformly random seeded player}.
-- Also drives mhd_fixed (it answers every path with the same bytes), so the client work is equal.
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
  return wrk.format("GET", prefix .. c.player() .. (c.query ~= "" and "?" .. c.query or ""))
end
