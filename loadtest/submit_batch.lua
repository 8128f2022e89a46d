-- loadtest/submit_batch.lua — writes in batches, the way a game server reports a round:
-- POST /v1/scores:batch with the write key and `items=N` (default 100) submissions
-- {"board", "player_id": uniformly random seeded player, "score": 0..1,000,000}.
-- Counts acknowledged items (each answered with a Submit result) and refused ones (each an
-- error object): run.sh compares the acknowledged count with the rows of `submissions`.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local c = dofile(dir .. "common.lua")
setup = c.setup
done = c.done

local headers, items, board_json
function init(args)
  c.args(args)
  headers = c.write_headers()
  items = tonumber(c.opt.items or "100")
  board_json = string.format('{"board":"%s","player_id":"', c.board)
end

function request()
  local parts = {}
  for i = 1, items do
    parts[i] = string.format('%s%s","score":%d}', board_json, c.player(), math.random(0, 1000000))
  end
  n_write = n_write + items
  return wrk.format("POST", "/v1/scores:batch", headers, '{"scores":[' .. table.concat(parts, ",") .. ']}')
end

-- occurrences of a plain string in s
local function occurrences(s, what)
  local n, at = 0, 1
  while true do
    local i = s:find(what, at, true)
    if not i then return n end
    n, at = n + 1, i + #what
  end
end

function response(status, headers, body)
  if status ~= 200 or not body then
    n_bad = n_bad + 1
    return
  end
  n_write_ok = n_write_ok + occurrences(body, '"previous_score"')
  n_write_bad = n_write_bad + occurrences(body, '"error"')
end
