-- loadtest/submit_batch.lua — writes in batches, the way a game server reports a round:
-- POST /v1/scores:batch with the write key and `items=N` (default 100) submissions
-- {"board", "player_id": uniformly random seeded player, "score": 0..1,000,000 (scores=none|all:
-- common.lua's write_score)}.
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
    parts[i] = string.format('%s%s","score":%d}', board_json, c.player(), c.write_score())
  end
  n_write = n_write + items
  return wrk.format("POST", "/v1/scores:batch", headers, '{"scores":[' .. table.concat(parts, ",") .. ']}')
end

function response(status, headers, body)
  c.count_batch(status, body)
end
