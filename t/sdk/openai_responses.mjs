// openai_responses.mjs - the official OpenAI Node SDK's Responses API
// (client.responses) as a real client of the gateway.
//
//   node t/sdk/openai_responses.mjs BASE_URL [MODEL] [PROMPT]
//
//   BASE_URL  e.g. http://127.0.0.1:8080/v1
//   MODEL     default "openai/gpt-4o"
//   PROMPT    default "Say hello"
//   env AI_GW_API_KEY: the client's key (default "sk-test-client")
//   env AI_GW_STEPS: the steps to run, comma-separated (default all:
//       create,stream,events,tools,tools_stream); "fail" alone streams
//       and reports how the stream ended.
//
// The tool steps make their first call (the one answered with a tool
// call) with env AI_GW_TOOL_MODEL (default MODEL), its optional "models"
// list AI_GW_TOOL_MODELS (JSON) and base URL AI_GW_TOOL_BASE_URL (default
// BASE_URL); the round trip's second call goes to BASE_URL and MODEL.
// Prints ONE JSON line on stdout:
//   {"ok":true,
//    "create":  {"id","status","output_text","output","usage"},
//    "stream":  {"events":[names],"text","final":{id,status,output_text,usage}},
//    "events":  {"names":[...],"text","completed_usage"},
//    "tools":   {"call":{call_id,name,arguments},"answer","usage"},
//    "tools_stream": {"call":{...},"args_deltas","final_output"},
//    "fail":    {"names":[...],"error","threw"}}
// On failure {"ok":false,"step","error","status"} and exit 1.  The SDK's
// retries are off so a failure shows as it is.

import OpenAI from 'openai';

const baseURL = process.argv[2];
const model = process.argv[3] || 'openai/gpt-4o';
const prompt = process.argv[4] || 'Say hello';
const steps = (process.env.AI_GW_STEPS || 'create,stream,events,tools,tools_stream')
  .split(',');

if (!baseURL) {
  console.error('usage: openai_responses.mjs BASE_URL [MODEL] [PROMPT]');
  process.exit(2);
}

const client = new OpenAI({
  baseURL,
  apiKey: process.env.AI_GW_API_KEY || 'sk-test-client',
  maxRetries: 0,
  timeout: 30_000,
});

const tools = [{
  type: 'function',
  name: 'get_weather',
  description: 'Weather for a city',
  parameters: {
    type: 'object',
    properties: { text: { type: 'string' } },
    required: ['text'],
    additionalProperties: false,
  },
  strict: true,
}];

const toolClient = process.env.AI_GW_TOOL_BASE_URL
  ? new OpenAI({ baseURL: process.env.AI_GW_TOOL_BASE_URL,
                 apiKey: 'sk-test-client', maxRetries: 0, timeout: 30_000 })
  : client;
const toolModel = process.env.AI_GW_TOOL_MODEL || model;
const toolModels = process.env.AI_GW_TOOL_MODELS
  ? { models: JSON.parse(process.env.AI_GW_TOOL_MODELS) } : {};

function brief(r) {
  return { id: r.id, status: r.status, output_text: r.output_text,
           output: r.output, usage: r.usage };
}

let step = 'start';
try {
  const result = { ok: true };

  if (steps.includes('create')) {
    step = 'create';
    result.create = brief(await client.responses.create({
      model, input: prompt, instructions: 'be brief', max_output_tokens: 100,
    }));
  }

  if (steps.includes('stream')) {
    step = 'stream';
    const names = [];
    let text = '';
    const s = client.responses.stream({ model, input: prompt });
    s.on('event', (e) => names.push(e.type));
    s.on('response.output_text.delta', (e) => { text += e.delta; });
    const final = await s.finalResponse();
    result.stream = { events: names, text, final: brief(final) };
  }

  if (steps.includes('events')) {
    step = 'events';
    const names = [];
    let text = '';
    let usage = null;
    const events = await client.responses.create({ model, input: prompt, stream: true });
    for await (const e of events) {
      names.push(e.type);
      if (e.type === 'response.output_text.delta') text += e.delta;
      if (e.type === 'response.completed') usage = e.response.usage;
    }
    result.events = { names, text, completed_usage: usage };
  }

  if (steps.includes('tools')) {
    step = 'tools';
    const input = [{ role: 'user', content: prompt }];
    const first = await toolClient.responses.create({
      model: toolModel, ...toolModels, input, tools });
    const call = first.output.find((o) => o.type === 'function_call');
    if (!call) throw new Error('no function_call in ' + JSON.stringify(first.output));
    // the SDK's documented round trip: the output goes back as input
    input.push(...first.output);
    input.push({ type: 'function_call_output', call_id: call.call_id,
                 output: JSON.stringify({ temperature: 21 }) });
    const second = await client.responses.create({ model, input, tools });
    result.tools = {
      call: { call_id: call.call_id, name: call.name, arguments: call.arguments },
      answer: second.output_text,
      usage: second.usage,
    };
  }

  if (steps.includes('tools_stream')) {
    step = 'tools_stream';
    let deltas = '';
    const s = toolClient.responses.stream({
      model: toolModel, ...toolModels, input: prompt, tools });
    s.on('response.function_call_arguments.delta', (e) => { deltas += e.delta; });
    const final = await s.finalResponse();
    const call = final.output.find((o) => o.type === 'function_call');
    result.tools_stream = {
      call: call && { call_id: call.call_id, name: call.name, arguments: call.arguments },
      args_deltas: deltas,
      final_output: final.output.map((o) => o.type),
      status: final.status,
    };
  }

  if (steps.includes('fail')) {
    step = 'fail';
    const names = [];
    let threw = false;
    let error = null;
    try {
      const events = await client.responses.create({ model, input: prompt, stream: true });
      for await (const e of events) names.push(e.type);
    } catch (err) {
      threw = true;
      error = err?.message ?? String(err);
    }
    result.fail = { names, threw, error };
  }

  console.log(JSON.stringify(result));
} catch (err) {
  const message = err?.message ?? String(err);
  console.log(JSON.stringify({ ok: false, step, error: message, status: err?.status ?? null }));
  console.error(`openai_responses.mjs: ${step}: ${message}`);
  process.exit(1);
}
