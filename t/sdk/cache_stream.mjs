// cache_stream.mjs - the official openai Node SDK streaming one chat
// completion through an ai_cache location (t/65-cache.t runs it twice: a
// miss, then a hit replayed from the cache).
//
//   node t/sdk/cache_stream.mjs BASE_URL TEXT
//
// Prints ONE JSON line: {"text","finish","usage","cache"} where cache is
// the X-AI-Cache header ("MISS", "HIT").  Exit 1 when the SDK throws.

import OpenAI from 'openai';

const [baseURL, text] = process.argv.slice(2);

if (!baseURL || !text) {
  console.error('usage: cache_stream.mjs BASE_URL TEXT');
  process.exit(2);
}

const client = new OpenAI({ baseURL, apiKey: 'sk-test-client', maxRetries: 0,
                            timeout: 30_000 });

try {
  const { data: stream, response } = await client.chat.completions.create({
    model: 'openai/gpt-4o',
    temperature: 0,
    messages: [{ role: 'user', content: text }],
    stream: true,
    stream_options: { include_usage: true },
  }).withResponse();

  let out = '';
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    if (chunk.choices?.length) {
      out += chunk.choices[0].delta?.content ?? '';
      finish = chunk.choices[0].finish_reason ?? finish;
    }
    if (chunk.usage) {
      usage = { prompt_tokens: chunk.usage.prompt_tokens,
                completion_tokens: chunk.usage.completion_tokens };
    }
  }
  const cache = response.headers.get('x-ai-cache');
  console.log(JSON.stringify({ text: out, finish, usage,
                               ...(cache === 'HIT' ? { cache } : {}) }));
} catch (err) {
  console.log(JSON.stringify({ ok: false, error: err?.message ?? String(err) }));
  process.exit(1);
}
