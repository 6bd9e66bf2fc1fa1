-- Mixed gateway traffic for wrk: whole answers, streams, fallbacks and
-- fusion, in turn; counts every status and reports them as one JSON
-- line ("LOAD {...}") in done().

local kinds = {
  { path = "/v1/chat/completions",
    body = '{"model":"openai/gpt-4o","messages":[{"role":"user","content":"load test"}]}' },
  { path = "/v1/chat/completions",
    body = '{"model":"openai/gpt-4o","stream":true,"messages":[{"role":"user","content":"stream me"}]}' },
  { path = "/v1/chat/completions",
    body = '{"model":"openai/x-status500","messages":[{"role":"user","content":"fall back"}]}' },
  { path = "/fusion/v1/chat/completions",
    body = '{"model":"fusion","messages":[{"role":"user","content":"fuse"}]}' },
  { path = "/v1/chat/completions",
    body = '{"model":"anthropic/claude","stream":true,"messages":[{"role":"user","content":"translate"}]}' },
}

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  n = 0
  statuses = {}
  cut = 0
end

function request()
  n = n + 1
  local k = kinds[(n % #kinds) + 1]
  return wrk.format("POST", k.path, { ["Content-Type"] = "application/json" }, k.body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  -- a stream must end whole: [DONE], never an error event
  if headers["Content-Type"] == "text/event-stream"
     and not string.find(body, "data: %[DONE%]") then
    cut = cut + 1
  end
end

function done(summary, latency, requests)
  local total = {}
  local cuts = 0
  for _, t in ipairs(threads) do
    local s = t:get("statuses")
    for k, v in pairs(s) do total[k] = (total[k] or 0) + v end
    cuts = cuts + t:get("cut")
  end
  local parts = {}
  for k, v in pairs(total) do table.insert(parts, string.format('"%d":%d', k, v)) end
  io.write(string.format(
    'LOAD {"requests":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
    .. '"statuses":{%s},"cut_streams":%d,"p50_us":%d,"p99_us":%d,"rps":%.1f}\n',
    summary.requests, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout, table.concat(parts, ","), cuts,
    latency:percentile(50), latency:percentile(99),
    summary.requests / (summary.duration / 1e6)))
end
