-- loadtest/rank.lua — GET /v1/leaderboards/BOARD/players/{uniformly random seeded player}.
-- With boards=A,B,… (instead of board=) each request picks one of those boards at random; with
-- suffix=/cohort (say) it asks for that path below the player instead (a league's cohort); with
-- bearer=CREDENTIAL each request carries "Authorization: Bearer CREDENTIAL" (a read key, or a
-- player token: tpair_read), without it none (public reads).
-- Also drives mhd_fixed (it answers every path with the same bytes), so the client work is equal.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local c = dofile(dir .. "common.lua")
setup = c.setup
done = c.done

local prefixes, suffix, headers
function init(args)
  c.args(args)
  suffix = c.opt.suffix or ""
  headers = c.opt.bearer and { ["Authorization"] = "Bearer " .. c.opt.bearer } or nil
  prefixes = {}
  for b in (c.opt.boards or c.board):gmatch("[^,]+") do
    prefixes[#prefixes + 1] = "/v1/leaderboards/" .. b .. "/players/"
  end
end

function request()
  local prefix = prefixes[#prefixes == 1 and 1 or math.random(1, #prefixes)]
  return wrk.format("GET", prefix .. c.player() .. suffix .. (c.query ~= "" and "?" .. c.query or ""), headers)
end
