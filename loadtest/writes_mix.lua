-- loadtest/writes_mix.lua — a game's real write traffic (issue 51 item 1): one POST per
-- submission, random players of three boards seeded with loadtest/seed.sql -v det=1 (player i's
-- seeded score is (i * 7919) % 1000003, known here without asking):
--   wbest   (best)   3 in 5 submissions: about 1 in 5 of them beats the player's best (the seeded
--                    score plus 1..1000), the others do not (0..the seeded score);
--   wlatest (latest) 1 in 5: about 1 in 5 of them a new score, the others the player's seeded
--                    score again (no change while the player's standing still holds it);
--   wsum    (sum)    1 in 5: 0..100 added.
-- With `items=N`, the same submissions go N to a POST /v1/scores:batch (`writes_mix_batch`: what
-- the same traffic costs batched, on the same boards).
-- Counts the acknowledged submissions: run.sh compares them with the rows added to `submissions`,
-- and every standing of the three boards with what the seed and the log make it
-- (writes_mix_check).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local c = dofile(dir .. "common.lua")
setup = c.setup
done = c.done

local headers, items
local paths = {}
function init(args)
  c.args(args)
  headers = c.write_headers()
  items = tonumber(c.opt.items or "0")
  for _, b in ipairs({ "wbest", "wlatest", "wsum" }) do
    paths[b] = "/v1/leaderboards/" .. b .. "/scores"
  end
end

local function seeded(n)
  return (n * 7919) % 1000003
end

-- One submission of the mix: its board and its body's fields.
local function submission()
  local n = math.random(1, c.players)
  local r, board, score = math.random(), nil, nil
  if r < 0.6 then
    board = "wbest"
    if math.random() < 0.2 then score = seeded(n) + math.random(1, 1000) else score = math.random(0, seeded(n)) end
  elseif r < 0.8 then
    board = "wlatest"
    if math.random() < 0.2 then score = math.random(0, 1000000) else score = seeded(n) end
  else
    board = "wsum"
    score = math.random(0, 100)
  end
  return board, c.player_n(n), score
end

function request()
  if items > 0 then
    local parts = {}
    for i = 1, items do
      local board, player, score = submission()
      parts[i] = string.format('{"board":"%s","player_id":"%s","score":%d}', board, player, score)
    end
    n_write = n_write + items
    return wrk.format("POST", "/v1/scores:batch", headers, '{"scores":[' .. table.concat(parts, ",") .. ']}')
  end
  n_write = n_write + 1
  local board, player, score = submission()
  local body = string.format('{"player_id":"%s","score":%d}', player, score)
  return wrk.format("POST", paths[board], headers, body)
end

function response(status, headers, body)
  if items > 0 then c.count_batch(status, body) else c.count(status, body) end
end
