-- wrk script: POST an Open311 form with a random point in Moscow (inside the city, mostly outside MKAD's core).
-- WRK_PATH: the URL path; WRK_BODY: the fixed form fields (urlencoded). Prints one JSON line when done.
local path = os.getenv("WRK_PATH")
local body = os.getenv("WRK_BODY")

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"

local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
end

function init(args)
  math.randomseed(seed * 7919 + os.time())
end

function request()
  local lat = 55.66 + math.random() * 0.18
  local lon = 37.48 + math.random() * 0.26
  return wrk.format(nil, path, nil, string.format("%s&lat=%.6f&long=%.6f", body, lat, lon))
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "non_2xx": %d, "connect_errors": %d, "read_errors": %d, ' ..
    '"write_errors": %d, "timeouts": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
