-- POSTs a JSON body with a new thread id per request, unique across wrk threads and runs,
-- so no two requests ever contend for one thread.
local made = 0

function setup(thread)
  made = made + 1
  thread:set("tid", made)
end

function init(args)
  prefix = "b" .. os.time() .. "-" .. tid .. "-" .. math.random(1, 1000000)
  counter = 0
end

function request()
  counter = counter + 1
  local body = '{"messages": ["hi"], "config": {"thread_id": "' .. prefix .. "-" .. counter .. '"}}'
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
