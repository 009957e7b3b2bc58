-- wrk script: POST /affinity/feedback with batches of BATCH click events for
-- random viewers and items of the medium world.
local users = tonumber(os.getenv("USERS") or "100000")
local items = tonumber(os.getenv("ITEMS") or "200000")
local batch = tonumber(os.getenv("BATCH") or "1000")
local bodies = {}
math.randomseed(11)
for b = 1, 16 do
  local ev = {}
  for i = 1, batch do
    ev[i] = string.format('{"viewer_id":"u%d","entity_id":"i%d","action":"click"}',
                          math.random(0, users - 1), math.random(0, items - 1))
  end
  bodies[b] = '{"events":[' .. table.concat(ev, ",") .. ']}'
end
local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", "/affinity/feedback", {["Content-Type"] = "application/json"}, bodies[(n % #bodies) + 1])
end
done = function(summary, latency, requests)
  io.write(string.format("events/s: %.0f\n", summary.requests / (summary.duration / 1e6) * batch))
end
