-- loadtest/join.lua — tournament joins: POST /v1/leaderboards/BOARD/players/{random seeded
-- player}/join with the write key, no body. The first join of a player takes a place in the slot
-- (under the slot's row lock), a later one answers the first: both are counted as acknowledged
-- (w_ok) when the answer is a 200 join result.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local c = dofile(dir .. "common.lua")
setup = c.setup
done = c.done

local headers
function init(args)
  c.args(args)
  headers = c.write_headers()
  headers["Content-Type"] = nil -- no body
  headers["Content-Length"] = "0"
end

function request()
  n_write = n_write + 1
  return wrk.format("POST", c.base .. "/players/" .. c.player() .. "/join", headers)
end

function response(status, headers, body)
  if status == 200 and body and body:find('"joined_at"', 1, true) then
    n_write_ok = n_write_ok + 1
  elseif status >= 400 then
    n_write_bad = n_write_bad + 1
    n_bad = n_bad + 1
  end
end
