-- wrk script of make bench: GET the paths listed in a file, optionally paced.
--
--   wrk -t T -s bench/wrk/paths.lua URL -- PATHS_FILE MEAN_DELAY_MS ONCE T
--
-- PATHS_FILE: one request path per line (e.g. /v1/contacts/<id>); threads take the lines in
-- turn (thread k takes k, k+T, k+2T, ...), so with ONCE=1 no path is requested twice in a run
-- (cache-miss figures) and a thread that runs out stops its connections' requests by
-- repeating its last path (counted: see "repeated" in the output).
-- MEAN_DELAY_MS > 0: each connection waits an exponentially distributed pause of that mean
-- (ms) before each request (an open-loop-like paced load; wrk times a request from its write,
-- so the pause is not in the latency).
-- T: wrk's thread count again (a thread's script cannot see it).
-- Prints one JSON line at the end: requests, seconds, errors, latency percentiles in µs.

local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  paths = {}
  for line in io.lines(args[1]) do
    if #line > 0 then table.insert(paths, line) end
  end
  mean_delay = tonumber(args[2] or "0") or 0
  once = (args[3] == "1")
  nthreads = tonumber(args[4] or "1")
  index = id + 1
  repeated = 0
  math.randomseed(os.time() + id * 7919)
end

function request()
  if not once and index > #paths then index = ((index - 1) % #paths) + 1 end
  local path = paths[index]
  if path == nil then
    repeated = repeated + 1
    path = paths[#paths]
  end
  index = index + nthreads
  return wrk.format("GET", path)
end

function delay()
  if mean_delay <= 0 then return 0 end
  return -math.log(1 - math.random()) * mean_delay
end

function done(summary, latency, requests)
  local rep = 0
  for _, t in ipairs(threads) do rep = rep + (t:get("repeated") or 0) end
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "bytes": %d, "errors_connect": %d, ' ..
    '"errors_read": %d, "errors_write": %d, "errors_status": %d, "errors_timeout": %d, ' ..
    '"repeated": %d, "lat_mean_us": %.1f, "lat_max_us": %d, "lat_p50_us": %d, ' ..
    '"lat_p90_us": %d, "lat_p99_us": %d, "lat_p999_us": %d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, rep, latency.mean, latency.max, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9)))
end
