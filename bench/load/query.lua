-- wrk script: POST /affinity/query for random viewers of the medium world,
-- rotating the target kind. USERS sets the viewer id range; EXTRA is appended to
-- every body (e.g. ',"ranker":"off"' or ',"explain":"full"'). AFFINITY_API_KEY, when
-- set, is sent as a Bearer key (a server with [auth] keys).
local users = tonumber(os.getenv("USERS") or "100000")
local extra = os.getenv("EXTRA") or ""
local headers = {["Content-Type"] = "application/json"}
local key = os.getenv("AFFINITY_API_KEY") or ""
if key ~= "" then headers["Authorization"] = "Bearer " .. key end
local targets = {"items", "items", "creators", "users"}
local n = 0
math.randomseed(7)
request = function()
  n = n + 1
  local body = string.format('{"viewer_id":"u%d","target":"%s","k":20%s}', math.random(0, users - 1),
                             targets[(n % #targets) + 1], extra)
  return wrk.format("POST", "/affinity/query", headers, body)
end
