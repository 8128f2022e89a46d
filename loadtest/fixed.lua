-- loadtest/fixed.lua — one fixed GET, replayed (wrk builds the request once): path=/v1/…
-- Used for the hot top-10 and top-100 reads and for nginx serving the same bytes; key=… adds
-- the bearer key (abuse.sh's flood of strong reads).
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local c = dofile(dir .. "common.lua")
setup = c.setup
done = c.done

function init(args)
  c.args(args)
  wrk.method = "GET"
  wrk.path = c.opt.path or (c.base .. "/entries?limit=10")
  if c.key ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. c.key
  end
end
