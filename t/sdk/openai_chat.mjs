// openai_chat.mjs - the official OpenAI Node SDK as a real client of the
// gateway (or of the mock provider directly).
//
//   node t/sdk/openai_chat.mjs BASE_URL [MODEL] [PROMPT]
//
//   BASE_URL  e.g. http://127.0.0.1:8080/v1   (or env AI_GW_BASE_URL)
//   MODEL     default "openai/gpt-4o"          (or env AI_GW_MODEL)
//   PROMPT    default "Say hello"              (or env AI_GW_PROMPT)
//   env AI_GW_API_KEY: the client's key (default "sk-test-client")
//
// Makes three calls -- a plain chat.completions.create, a streamed one, and
// a streamed one with stream_options.include_usage -- and prints ONE JSON
// line on stdout:
//   {"ok":true,
//    "nonstream":    {"id","model","content","finish_reason","usage"},
//    "stream":       {"model","content","chunks","finish_reason","usage"},
//    "stream_usage": {"model","content","chunks","finish_reason","usage"}}
// ("chunks" counts the chunk objects received; "usage" is null when none
// came).  On failure it prints {"ok":false,"step","error","status"} on
// stdout, the message on stderr, and exits 1.  The SDK's retries are off so
// a failure shows as it is.

import OpenAI from 'openai';

const baseURL = process.argv[2] || process.env.AI_GW_BASE_URL;
const model = process.argv[3] || process.env.AI_GW_MODEL || 'openai/gpt-4o';
const prompt = process.argv[4] || process.env.AI_GW_PROMPT || 'Say hello';

if (!baseURL) {
  console.error('usage: openai_chat.mjs BASE_URL [MODEL] [PROMPT]');
  process.exit(2);
}

const client = new OpenAI({
  baseURL,
  apiKey: process.env.AI_GW_API_KEY || 'sk-test-client',
  maxRetries: 0,
  timeout: 30_000,
});
const messages = [{ role: 'user', content: prompt }];

// Iterate a stream, joining the content deltas.
async function collect(stream) {
  const out = { model: null, content: '', chunks: 0, finish_reason: null, usage: null };
  for await (const chunk of stream) {
    out.chunks++;
    out.model ??= chunk.model;
    for (const choice of chunk.choices ?? []) {
      if (choice.delta?.content) out.content += choice.delta.content;
      if (choice.finish_reason) out.finish_reason = choice.finish_reason;
    }
    if (chunk.usage) out.usage = chunk.usage;
  }
  return out;
}

let step = 'nonstream';
try {
  const result = { ok: true };

  const c = await client.chat.completions.create({ model, messages });
  result.nonstream = {
    id: c.id,
    model: c.model,
    content: c.choices?.[0]?.message?.content ?? null,
    finish_reason: c.choices?.[0]?.finish_reason ?? null,
    usage: c.usage ?? null,
  };

  step = 'stream';
  result.stream = await collect(
    await client.chat.completions.create({ model, messages, stream: true }));

  step = 'stream_usage';
  result.stream_usage = await collect(
    await client.chat.completions.create({
      model, messages, stream: true, stream_options: { include_usage: true },
    }));

  console.log(JSON.stringify(result));
} catch (err) {
  const message = err?.message ?? String(err);
  console.log(JSON.stringify({ ok: false, step, error: message, status: err?.status ?? null }));
  console.error(`openai_chat.mjs: ${step}: ${message}`);
  process.exit(1);
}
