-- wrk script for bench/intake.py: POST the fixture with a fresh Bundle.id (and referral ref) per request.
-- Environment: BENCH_BODY (file of the fixture), BENCH_PATH, BENCH_HEADERS (name\tvalue lines),
-- BENCH_BUNDLE_ID and BENCH_REFERRAL_REF (the ids to replace), BENCH_FRESH_REFERRAL ("1" or "0").
local counter = 0
-- thread_id is a global on purpose: setup() sets it in each thread's own Lua state with
-- thread:set, which a file-level local would shadow (every thread would then send the same ids).
thread_id = 0
local threads = {}
local template, path, headers, bundle_id, referral_ref, fresh_referral

local function escape(text)
  return (text:gsub("%p", "%%%0"))
end

function setup(thread)
  thread:set("thread_id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
  template = file:read("*a")
  file:close()
  path = os.getenv("BENCH_PATH")
  headers = {}
  for name, value in (os.getenv("BENCH_HEADERS") or ""):gmatch("([^\t\n]+)\t([^\n]*)") do
    headers[name] = value
  end
  bundle_id = escape(os.getenv("BENCH_BUNDLE_ID"))
  referral_ref = escape(os.getenv("BENCH_REFERRAL_REF"))
  fresh_referral = os.getenv("BENCH_FRESH_REFERRAL") == "1"
  nonce = tonumber(os.getenv("BENCH_NONCE") or "0")
end

local function fresh_id(kind)
  -- Unique per run, thread and request: run nonce, kind, thread, counter.
  return string.format("%08x-%04x-4%03x-8000-%012d", nonce, kind, thread_id, counter)
end

function request()
  counter = counter + 1
  local body = template:gsub(bundle_id, fresh_id(1), 1)
  if fresh_referral then
    body = body:gsub(referral_ref, fresh_id(2))
  end
  return wrk.format("POST", path, headers, body)
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "non_2xx": %d, "connect": %d, "read": %d, "write": %d, "timeout": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, errors.status, errors.connect, errors.read, errors.write, errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
