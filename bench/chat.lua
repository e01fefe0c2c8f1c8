-- wrk script for the bench: POST one small chat completion per request, over and over.
-- Environment: BENCH_MODEL (the model name the target expects), BENCH_STREAM=1 to ask for an SSE
-- stream with a usage chunk, BENCH_HEADERS="name: value;name: value" for extra request headers.
-- At the end it prints one line, "BENCH {json}", that bench/measure.py reads.
local model = os.getenv("BENCH_MODEL") or "gpt-4o-mini"
local stream = os.getenv("BENCH_STREAM") == "1"

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
for pair in string.gmatch(os.getenv("BENCH_HEADERS") or "", "[^;]+") do
  local name, value = string.match(pair, "^%s*([^:]+):%s*(.-)%s*$")
  if name then wrk.headers[name] = value end
end

local body = '{"model":"' .. model .. '","messages":[{"role":"system","content":"You are terse."},'
  .. '{"role":"user","content":"Say hello to the benchmark."}],"max_tokens":16,"temperature":0'
if stream then
  body = body .. ',"stream":true,"stream_options":{"include_usage":true}'
end
wrk.body = body .. "}"

-- No response() hook: defining one makes wrk copy every body into Lua and slows it down.
done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'BENCH {"requests":%d,"seconds":%.3f,"rps":%.1f,"non2xx":%d,"socket_errors":%d,"timeouts":%d,'
      .. '"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,"mean_ms":%.3f}\n',
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6), errors.status,
    errors.connect + errors.read + errors.write, errors.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, latency.mean / 1000))
end
