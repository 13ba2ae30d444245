-- POSTs a JSON body with a new thread id per request, unique across wrk threads and runs,
-- so no two requests ever contend for one thread. BENCH_BODY=blocks sends the message as
-- agentflow's client does (content blocks); otherwise a plain string.
local made = 0

function setup(thread)
  made = made + 1
  thread:set("tid", made)
end

function init(args)
  prefix = "b" .. os.time() .. "-" .. tid .. "-" .. math.random(1, 1000000)
  counter = 0
end

local blocks = os.getenv("BENCH_BODY") == "blocks"

function request()
  counter = counter + 1
  local thread = '"config": {"thread_id": "' .. prefix .. "-" .. counter .. '"}}'
  local body
  if blocks then
    body = '{"messages": [{"role": "user", "content": [{"type": "text", "text": "hello"}]}], ' .. thread
  else
    body = '{"messages": ["hi"], ' .. thread
  end
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
