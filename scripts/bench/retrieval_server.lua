-- wrk script for the retrieval daemon: POST /retrieve with bodies read from $STRATA_BENCH_BODIES
-- (one JSON request per line), cycling through them so that requests differ; prints one
-- machine-readable RESULT line at the end.
local bodies = {}
local path = os.getenv("STRATA_BENCH_BODIES")
for line in io.lines(path) do
  if #line > 0 then bodies[#bodies + 1] = line end
end
local counter = 0

function setup(thread)
  thread:set("offset", counter * 7919)
  counter = counter + 1
end

function init(args)
  i = offset or 0
end

function request()
  i = i + 1
  local body = bodies[(i % #bodies) + 1]
  return wrk.format("POST", "/retrieve", {["Content-Type"] = "application/json"}, body)
end

function done(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write +
                 summary.errors.timeout
  io.write(string.format("RESULT rps=%.1f p50_ms=%.3f p99_ms=%.3f requests=%d errors=%d non2xx=%d\n",
                         summary.requests / (summary.duration / 1e6),
                         latency:percentile(50) / 1000, latency:percentile(99) / 1000,
                         summary.requests, errors, summary.errors.status))
end
