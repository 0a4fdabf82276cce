-- wrk script: POST a JSON body built by the bench (BENCH_BODY) with unique values per request.
local counter = 0
local template = os.getenv("BENCH_BODY") or "{}"
local path = os.getenv("BENCH_PATH") or "/"
local auth = os.getenv("BENCH_AUTH")
local thread_id = 0

setup = function(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
end

init = function(args)
  -- Every thread starts with the same seed otherwise, and equal values would collide.
  math.randomseed(os.time() * 1000 + (tid or 0))
end

request = function()
  counter = counter + 1
  local n = tostring(tid or 0) .. "-" .. tostring(counter) .. "-" .. tostring(math.random(1, 1e9))
  local body = string.gsub(template, "{{n}}", n)
  local headers = { ["Content-Type"] = "application/json" }
  if auth then headers["Authorization"] = "Bearer " .. auth end
  return wrk.format("POST", path, headers, body)
end

local reported = false
response = function(status, headers, body)
  if status >= 300 and not reported then
    reported = true
    io.stderr:write("non-2xx " .. status .. ": " .. body .. "\n")
  end
end
