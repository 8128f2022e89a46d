-- loadtest/submit_refused.lua — POST /v1/leaderboards/BOARD/scores with the write key and a
-- body rankd refuses after reading it whole ({"player_id": random seeded player, "score":
-- "refused"}: 400 invalid_score). What a lone submission costs rankd before its write: the
-- connection's request, the key, the JSON, the validation and an answer. No write reaches
-- the writer, PostgreSQL or Redis.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local c = dofile(dir .. "common.lua")
setup = c.setup
done = c.done

local path, headers
function init(args)
  c.args(args)
  path = c.base .. "/scores"
  headers = c.write_headers()
end

function request()
  local body = string.format('{"player_id":"%s","score":"refused"}', c.player())
  return wrk.format("POST", path, headers, body)
end

-- bad: the 400s this scenario is about; any other answer counts in w_bad (run.sh refuses the
-- round: a 401, 404, 429 or 503 would measure a cheaper path)
function response(status, headers, body)
  if status == 400 then n_bad = n_bad + 1 else n_write_bad = n_write_bad + 1 end
end
