-- loadtest/mix.lua — read-heavy mix, 90 % reads / 10 % writes, players drawn Zipf(s) (zipf=S,
-- default 1.0) over the seeded players: player 1 is the most active, player k about 1/k^s as much.
--   35 %  GET  /v1/leaderboards/BOARD/entries?limit=10            (the hot top)
--   30 %  GET  /v1/leaderboards/BOARD/players/{zipf player}       (my rank)
--   15 %  GET  /v1/leaderboards/BOARD/players/{zipf player}/around?before=5&after=5
--   10 %  GET  /v1/leaderboards/BOARD/entries?limit=100
--   10 %  POST /v1/leaderboards/BOARD/scores {zipf player, score 0..1,000,000}
-- Counts reads and acknowledged writes (run.sh turns them into queries per read and the
-- durability check).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local c = dofile(dir .. "common.lua")
setup = c.setup
done = c.done

local top10, top100, players, scores, headers
function init(args)
  c.args(args)
  top10 = c.base .. "/entries?limit=10"
  top100 = c.base .. "/entries?limit=100"
  players = c.base .. "/players/"
  scores = c.base .. "/scores"
  headers = c.write_headers()
end

-- requests sent per kind (s_top10, s_rank, s_around, s_top100; writes: n_write), so that they
-- can be compared with rankd's per-route counters
s_top10, s_rank, s_around, s_top100 = 0, 0, 0, 0
function request()
  local r = math.random(100)
  if r <= 35 then
    s_top10 = s_top10 + 1
    return wrk.format("GET", top10)
  elseif r <= 65 then
    s_rank = s_rank + 1
    return wrk.format("GET", players .. c.zipf_player())
  elseif r <= 80 then
    s_around = s_around + 1
    return wrk.format("GET", players .. c.zipf_player() .. "/around?before=5&after=5")
  elseif r <= 90 then
    s_top100 = s_top100 + 1
    return wrk.format("GET", top100)
  end
  n_write = n_write + 1
  local body = string.format('{"player_id":"%s","score":%d}', c.zipf_player(), math.random(0, 1000000))
  return wrk.format("POST", scores, headers, body)
end

function response(status, headers, body)
  c.count(status, body)
end
