-- wrk script: POST /strategies/s<N>/performance with batches of fresh equity
-- points (every request carries timestamps never sent before, so the server
-- stores them rather than recognising a retry). Run with one wrk thread so the
-- counter is shared by all connections.
--   QMTL_TOKEN   bearer token (operator)
--   QMTL_BATCH   points per request (default 10000)
--   QMTL_STRATEGIES  strategies s0..s<N-1> to spread the batches over (default 20)
local counter = 0
local batch = tonumber(os.getenv("QMTL_BATCH") or "10000")
local strategies = tonumber(os.getenv("QMTL_STRATEGIES") or "20")
local headers = {
  ["Content-Type"] = "application/json",
  ["Authorization"] = "Bearer " .. os.getenv("QMTL_TOKEN"),
}
local base = 1600000000

request = function()
  local s = counter % strategies
  local offset = math.floor(counter / strategies) * batch
  counter = counter + 1
  local parts = {}
  for i = 1, batch do
    local t = base + (offset + i) * 60
    parts[i] = string.format('{"ts":"%s","equity":%d}', os.date("!%Y-%m-%dT%H:%M:%SZ", t),
                             100000 + i % 1000)
  end
  local body = '{"points":[' .. table.concat(parts, ",") .. ']}'
  return wrk.format("POST", "/strategies/s" .. s .. "/performance", headers, body)
end

local failures = 0
response = function(status, headers, body)
  if status ~= 200 then
    failures = failures + 1
    if failures < 3 then io.stderr:write("performance: HTTP " .. status .. " " .. body .. "\n") end
  end
end
