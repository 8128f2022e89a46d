-- loadtest/pagewalk.lua — walk a board page by page, following next_cursor.
--   GET /v1/leaderboards/BOARD/entries?limit=L              (a new walk)
--   GET /v1/leaderboards/BOARD/entries?limit=L&cursor=C     (C = next_cursor of a page)
-- A walk stops after rank maxrank (default 2,000) or on the last page; a new one starts.
-- The cursors waiting to be followed are a per-thread stack: each answer pushes its
-- next_cursor, the next request of a connection pops one (or starts a walk).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local c = dofile(dir .. "common.lua")
setup = c.setup
done = c.done

local first, limit, maxrank
local stack = {}
function init(args)
  c.args(args)
  limit = tonumber(c.opt.limit or "50")
  maxrank = tonumber(c.opt.maxrank or "2000")
  first = c.base .. "/entries?limit=" .. limit
end

function request()
  local cur = table.remove(stack)
  if cur then
    return wrk.format("GET", first .. "&cursor=" .. cur)
  end
  return wrk.format("GET", first)
end

function response(status, headers, body)
  c.count(status, nil)
  if status ~= 200 then return end
  local cur = body:match('"next_cursor":"([^"]+)"')
  local rank = tonumber(body:match('"rank":(%d+)') or "")
  if cur and rank and rank + limit <= maxrank then
    stack[#stack + 1] = cur
  end
end
