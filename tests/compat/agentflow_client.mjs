// A front end's client of the agentflow API, written from agentflow's TypeScript client
// (10xHub/agentflow-client: src/endpoints/invoke.ts, stream.ts, src/tools.ts): the requests
// it sends, the fields it reads, its remote-tool loop and its NDJSON stream reader. Run by
// tests/compat/test_agentflow_client.py as `node agentflow_client.mjs <base url> <thread>`;
// prints one JSON object with what each call saw.

const [baseUrl, threadId] = process.argv.slice(2);
const headers = { "Content-Type": "application/json", accept: "application/json" };
const tools = { weather: (args) => `sunny in ${args.city}` };

// The client sends every message with block content and message_id "0" when it has none.
const text = (role, value) => ({ role, content: [{ type: "text", text: value }], message_id: "0" });

function remoteCalls(messages) {
  // As the client checks: content must be an array (it calls .some on it).
  return messages.flatMap((m) =>
    m.content && m.content.some((b) => b.type === "remote_tool_call")
      ? m.content.filter((b) => b.type === "remote_tool_call")
      : [],
  );
}

function toolResults(calls) {
  return calls.map((call) => {
    const known = tools[call.name];
    const block = known
      ? { type: "tool_result", call_id: call.id, output: known(call.args), is_error: false, status: "completed" }
      : { type: "tool_result", call_id: call.id, output: { error: `Tool '${call.name}' not found` }, is_error: true, status: "failed" };
    return { role: "tool", content: [block], message_id: "0" };
  });
}

async function fail(response) {
  // The client reads both objects of an error body; a body without them is a TypeError there.
  const body = await response.json();
  throw new Error(`${response.status} ${body.error.code}: ${body.error.message} (${body.metadata.request_id})`);
}

async function invoke(messages, config) {
  let request = { messages, config, recursion_limit: 25, response_granularity: "full" };
  const seen = [];
  for (let iteration = 1; iteration <= 25; iteration++) {
    const response = await fetch(`${baseUrl}/v1/graph/invoke`, { method: "POST", headers, body: JSON.stringify(request) });
    if (!response.ok) await fail(response);
    const { data } = await response.json();
    seen.push({ iteration, messages: data.messages, meta: data.meta, keys: Object.keys(data) });
    const calls = remoteCalls(data.messages || []);
    if (calls.length === 0) return seen;
    // Only the tool results go back, with the same config (initial_state only the first time).
    request = { messages: toolResults(calls), config, recursion_limit: 25, response_granularity: "full" };
  }
  throw new Error("the remote-tool loop did not end");
}

async function* ndjson(body) {
  // The client's reader: decode, split on newlines, parse each line, drop what does not parse.
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (value) buffer += decoder.decode(value, { stream: true });
    let newline;
    while ((newline = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, newline).trim();
      buffer = buffer.slice(newline + 1);
      if (!line) continue;
      try { yield JSON.parse(line); } catch { /* the client skips it */ }
    }
    if (done) break;
  }
}

async function stream(messages, config) {
  let request = { messages, config, recursion_limit: 25, response_granularity: "low" };
  const rounds = [];
  for (let iteration = 1; iteration <= 25; iteration++) {
    const response = await fetch(`${baseUrl}/v1/graph/stream`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/x-ndjson, application/json" },
      body: JSON.stringify(request),
    });
    if (!response.ok) await fail(response);
    const chunks = [];
    for await (const chunk of ndjson(response.body)) chunks.push(chunk);
    const messages = chunks.filter((c) => c.message).map((c) => c.message);
    rounds.push({ events: chunks.map((c) => c.event), messages });
    const calls = remoteCalls(messages);
    if (calls.length === 0) return rounds;
    request = { messages: toolResults(calls), config, recursion_limit: 25, response_granularity: "low" };
  }
  throw new Error("the remote-tool loop did not end");
}

async function get(path) {
  const response = await fetch(`${baseUrl}${path}`, { headers });
  if (!response.ok) await fail(response);
  return (await response.json()).data;
}

const config = { thread_id: threadId };
const invoked = await invoke([text("user", "weather in Paris?")], config);
const streamed = await stream([text("user", "and again?")], { thread_id: `${threadId}-s` });
const state = await get(`/v1/threads/${threadId}/state`);
const threads = await get(`/v1/threads?search=${threadId}&offset=0&limit=10`);
const updatedAt = new Date(threads.threads[0].updated_at).getUTCFullYear();
const stopped = await (await fetch(`${baseUrl}/v1/graph/stop`, { method: "POST", headers, body: JSON.stringify({ thread_id: threadId, config }) })).json();
console.log(JSON.stringify({ invoked, streamed, state, threads, updatedAt, stopped }));
