// anthropic_messages.mjs - the official Anthropic Node SDK as a real client
// of the gateway's Messages API (or of the mock provider directly).
//
//   node t/sdk/anthropic_messages.mjs BASE_URL [MODEL] [PROMPT]
//
//   BASE_URL  the root the SDK appends /v1/messages to, e.g.
//             http://127.0.0.1:8080              (or env AI_GW_BASE_URL)
//   MODEL     default "anthropic/claude-3-7-sonnet"  (or env AI_GW_MODEL)
//   PROMPT    default "Say hello"                    (or env AI_GW_PROMPT)
//   env AI_GW_API_KEY: the client's key (default "sk-test-client")
//
// Makes a plain messages.create, a streamed one (stream: true, raw
// events), and one through the SDK's own stream helper (messages.stream,
// whose accumulator checks the event order), and prints ONE JSON line on
// stdout:
//   {"ok":true,
//    "nonstream": {"id","model","content","stop_reason","usage"},
//    "stream":    {"model","content","events","event_types","stop_reason",
//                  "input_tokens","output_tokens","start_usage"},
//    "final":     {"id","content","stop_reason","usage"}}
// ("input_tokens" of "stream": message_start's, replaced by message_delta's
// when that carries them, as the SDK's accumulator does; "start_usage":
// message_start's usage as sent.)
// On failure: {"ok":false,"step","error","status"} on stdout, the message
// on stderr, exit 1.  Retries are off.

import Anthropic from '@anthropic-ai/sdk';

const baseURL = process.argv[2] || process.env.AI_GW_BASE_URL;
const model = process.argv[3] || process.env.AI_GW_MODEL || 'anthropic/claude-3-7-sonnet';
const prompt = process.argv[4] || process.env.AI_GW_PROMPT || 'Say hello';

if (!baseURL) {
  console.error('usage: anthropic_messages.mjs BASE_URL [MODEL] [PROMPT]');
  process.exit(2);
}

const client = new Anthropic({
  baseURL,
  apiKey: process.env.AI_GW_API_KEY || 'sk-test-client',
  maxRetries: 0,
  timeout: 30_000,
});
const request = { model, max_tokens: 256, messages: [{ role: 'user', content: prompt }] };

let step = 'nonstream';
try {
  const result = { ok: true };

  const m = await client.messages.create(request);
  result.nonstream = {
    id: m.id,
    model: m.model,
    content: (m.content ?? []).filter((b) => b.type === 'text').map((b) => b.text).join(''),
    stop_reason: m.stop_reason ?? null,
    usage: m.usage ?? null,
  };

  step = 'stream';
  const s = { model: null, content: '', events: 0, event_types: [], stop_reason: null,
              input_tokens: null, output_tokens: null };
  const stream = await client.messages.create({ ...request, stream: true });
  for await (const ev of stream) {
    s.events++;
    s.event_types.push(ev.type);
    if (ev.type === 'message_start') {
      s.model = ev.message?.model ?? null;
      s.input_tokens = ev.message?.usage?.input_tokens ?? null;
      s.output_tokens = ev.message?.usage?.output_tokens ?? null;
      s.start_usage = ev.message?.usage ?? null;
    } else if (ev.type === 'content_block_delta' && ev.delta?.type === 'text_delta') {
      s.content += ev.delta.text;
    } else if (ev.type === 'message_delta') {
      s.stop_reason = ev.delta?.stop_reason ?? s.stop_reason;
      if (ev.usage?.output_tokens != null) s.output_tokens = ev.usage.output_tokens;
      if (ev.usage?.input_tokens != null) s.input_tokens = ev.usage.input_tokens;
    }
  }
  result.stream = s;

  step = 'final';
  const f = await client.messages.stream(request).finalMessage();
  result.final = {
    id: f.id,
    content: (f.content ?? []).filter((b) => b.type === 'text').map((b) => b.text).join(''),
    stop_reason: f.stop_reason ?? null,
    usage: f.usage ?? null,
  };

  console.log(JSON.stringify(result));
} catch (err) {
  const message = err?.message ?? String(err);
  console.log(JSON.stringify({ ok: false, step, error: message, status: err?.status ?? null }));
  console.error(`anthropic_messages.mjs: ${step}: ${message}`);
  process.exit(1);
}
