-- wrk script for the hot paths: BENCH_METHOD to BENCH_PATH, where {{id}} becomes one of
-- BENCH_IDS (comma-separated, taken in turn) and {{n}} in BENCH_BODY a value unique per request.
-- BENCH_AUTH is the bearer token; BENCH_IF_MATCH, when set, is sent as If-Match.
local method = os.getenv("BENCH_METHOD") or "GET"
local path = os.getenv("BENCH_PATH") or "/"
local template = os.getenv("BENCH_BODY")
local auth = os.getenv("BENCH_AUTH")
local if_match = os.getenv("BENCH_IF_MATCH")
local ids = {}
for id in string.gmatch(os.getenv("BENCH_IDS") or "", "[^,]+") do
  ids[#ids + 1] = id
end
local counter = 0
local thread_id = 0
-- BENCH_RATE (requests/s over all connections, BENCH_CONNECTIONS of them): each connection
-- waits its share of the interval before the next request, for latency at a fixed load.
local rate = tonumber(os.getenv("BENCH_RATE") or "0")
local connections = tonumber(os.getenv("BENCH_CONNECTIONS") or "32")
if rate > 0 then
  delay = function()
    return math.random(0, math.floor(2000 * connections / rate))
  end
end

setup = function(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
end

init = function(args)
  math.randomseed(os.time() * 1000 + (tid or 0))
  counter = math.random(1, 1e6)
end

request = function()
  counter = counter + 1
  local n = tostring(tid or 0) .. "-" .. tostring(counter) .. "-" .. tostring(math.random(1, 1e9))
  local id = #ids > 0 and ids[(counter % #ids) + 1] or ""
  local headers = {}
  if auth then headers["Authorization"] = "Bearer " .. auth end
  if if_match then headers["If-Match"] = if_match end
  local body = nil
  if template then
    headers["Content-Type"] = "application/json"
    body = string.gsub(string.gsub(template, "{{n}}", n), "{{id}}", id)
  end
  return wrk.format(method, string.gsub(path, "{{id}}", id), headers, body)
end

local reported = false
response = function(status, headers, body)
  if status >= 300 and not reported then
    reported = true
    io.stderr:write("non-2xx " .. status .. ": " .. body .. "\n")
  end
end
