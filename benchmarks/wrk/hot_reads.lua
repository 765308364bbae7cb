-- wrk script for PeerLearn's hot reads, as a signed-in learner.
--
--   PEERLEARN_TOKEN=<access_token> wrk -t1 -c20 -d15s --latency \
--       -s benchmarks/wrk/hot_reads.lua http://127.0.0.1:8080 -- browse
--
-- Argument after "--": browse (GET /api/sessions?domain=Programming), detail
-- (GET /api/sessions/{id}, ids cycled from PEERLEARN_SESSION_IDS, default 1..20)
-- or mix (browse and detail alternating). Without PEERLEARN_TOKEN the requests are
-- anonymous. done() prints one JSON line ("wrk_json: {...}") that
-- benchmarks/api_wrk.py reads; wrk's own text report comes before it.

local mode = "browse"
local ids = {}
local counter = 0

local function split_ids(text)
  local out = {}
  for id in string.gmatch(text or "", "%d+") do
    out[#out + 1] = id
  end
  return out
end

function init(args)
  mode = args[1] or "browse"
  ids = split_ids(os.getenv("PEERLEARN_SESSION_IDS"))
  if #ids == 0 then
    for i = 1, 20 do ids[i] = tostring(i) end
  end
  local token = os.getenv("PEERLEARN_TOKEN")
  if token and token ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. token
  end
  wrk.headers["Accept"] = "application/json"
end

local function browse()
  return wrk.format("GET", "/api/sessions?domain=Programming")
end

local function detail()
  counter = counter + 1
  return wrk.format("GET", "/api/sessions/" .. ids[(counter % #ids) + 1])
end

function request()
  if mode == "detail" then
    return detail()
  elseif mode == "mix" then
    counter = counter + 1
    if counter % 2 == 0 then return browse() end
    return detail()
  end
  return browse()
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local errors = summary.errors
  local non2xx = errors.status
  io.write(string.format(
    'wrk_json: {"mode": "%s", "requests": %d, "seconds": %.3f, "rps": %.1f, ' ..
    '"latency_ms": {"p50": %.3f, "p90": %.3f, "p99": %.3f, "max": %.3f, "mean": %.3f}, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d, "non_2xx": %d}}\n',
    mode, summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, latency.mean / 1000,
    errors.connect, errors.read, errors.write, errors.timeout, non2xx))
end
