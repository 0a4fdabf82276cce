-- wrk script: authenticated GET.
local auth = os.getenv("BENCH_AUTH")
request = function()
  return wrk.format("GET", nil, { ["Authorization"] = "Bearer " .. auth })
end
