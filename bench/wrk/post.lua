-- wrk script for the ngx_ai_gateway_module benchmark (bench/run.sh).
--
--   wrk ... -s bench/wrk/post.lua URL -- BODY_FILE DELAY_MS [HEADER: value]...
--
-- POSTs BODY_FILE as application/json on every request. The request is
-- built once (no request() function), so the script costs wrk nothing per
-- request. DELAY_MS > 0 defines wrk's delay() hook: each connection pauses
-- after a response before its next request, on average DELAY_MS, which
-- paces the load ("light load": about connections * 1000 / DELAY_MS
-- requests/s); wrk starts a request's latency clock when the request is
-- written, so the pause is not counted as latency. done() prints one line of JSON, prefixed
-- "WRKJSON ", with every number run.sh reports (latencies in microseconds).

local delay_ms = 0

function init(args)
   local f = assert(io.open(args[1], "rb"))
   wrk.body = f:read("*a")
   f:close()
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   delay_ms = tonumber(args[2]) or 0
   for i = 3, #args do
      local k, v = args[i]:match("^([^:]+):%s*(.*)$")
      if k then wrk.headers[k] = v end
   end
   if delay_ms > 0 then
      -- defined only when asked for: wrk paces every request through a
      -- timer as soon as a delay() function exists. The pauses are drawn
      -- from an exponential distribution (mean DELAY_MS, whole ms as wrk
      -- wants), so the connections do not fire in step: arrivals are
      -- close to a Poisson stream rather than bursts of every connection.
      math.randomseed(os.time())
      delay = function()
         local d = -delay_ms * math.log(1 - math.random())
         if d > 20 * delay_ms then d = 20 * delay_ms end
         return math.floor(d + 0.5)
      end
   end
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'WRKJSON {"duration_us":%d,"requests":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"min":%d,"mean":%.1f,"stdev":%.1f,"max":%d,' ..
      '"p50":%d,"p75":%d,"p90":%d,"p99":%d,"p999":%d}}\n',
      summary.duration, summary.requests, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.min, latency.mean, latency.stdev, latency.max,
      latency:percentile(50), latency:percentile(75), latency:percentile(90),
      latency:percentile(99), latency:percentile(99.9)))
end
