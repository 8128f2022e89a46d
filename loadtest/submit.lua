-- loadtest/submit.lua — writes only: POST /v1/leaderboards/BOARD/scores with the write key,
-- {"player_id": uniformly random seeded player, "score": 0..1,000,000} (about half the
-- submissions improve a `best` score; scores=none|all: common.lua's write_score). Counts the 200
-- answers: run.sh compares them with the rows that reached the `submissions` table.
-- With refused=1 the body is one rankd refuses after reading it whole ("score": "refused": 400
-- invalid_score): what a lone submission costs rankd before its write (the request, the key, the
-- JSON, the validation, an answer), nothing reaching the writer, PostgreSQL or Redis. Its 400s
-- count in `bad`, any other answer in `w_bad` (a 401, 404, 429 or 503 would measure a cheaper
-- path: run.sh refuses the round).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local c = dofile(dir .. "common.lua")
setup = c.setup
done = c.done

local path, headers, refused
function init(args)
  c.args(args)
  path = c.base .. "/scores"
  headers = c.write_headers()
  refused = c.opt.refused == "1"
end

function request()
  if refused then
    return wrk.format("POST", path, headers, string.format('{"player_id":"%s","score":"refused"}', c.player()))
  end
  n_write = n_write + 1
  local body = string.format('{"player_id":"%s","score":%d}', c.player(), c.write_score())
  return wrk.format("POST", path, headers, body)
end

function response(status, headers, body)
  if not refused then
    c.count(status, body)
  elseif status == 400 then
    n_bad = n_bad + 1
  else
    n_write_bad = n_write_bad + 1
  end
end
