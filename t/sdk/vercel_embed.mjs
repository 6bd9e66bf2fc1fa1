// vercel_embed.mjs - the Vercel AI SDK (ai 6, @ai-sdk/openai 3) as a client
// of the gateway's embeddings: embed and embedMany through createOpenAI's
// embedding model with its defaults (only baseURL set).
//
//   node t/sdk/vercel_embed.mjs BASE_URL MODEL
//
// Prints ONE JSON line: {"ok":true,"embed":{"embedding","tokens"},
// "many":{"embeddings","tokens"}}; on failure {"ok":false,"step","error"},
// exit 1.

import { embed, embedMany } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';

const [baseURL, model] = process.argv.slice(2);

if (!baseURL || !model) {
  console.error('usage: vercel_embed.mjs BASE_URL MODEL');
  process.exit(2);
}

const openai = createOpenAI({ baseURL, apiKey: 'sk-test-client' });
const em = openai.embedding ? openai.embedding(model) : openai.textEmbeddingModel(model);

let step = 'embed';
try {
  const one = await embed({ model: em, value: 'hello', maxRetries: 0 });
  step = 'many';
  const many = await embedMany({ model: em, values: ['one', 'three'], maxRetries: 0 });
  console.log(JSON.stringify({
    ok: true,
    embed: { embedding: one.embedding, tokens: one.usage?.tokens ?? null },
    many: { embeddings: many.embeddings, tokens: many.usage?.tokens ?? null },
  }));
} catch (err) {
  const message = err?.message ?? String(err);
  console.log(JSON.stringify({ ok: false, step, error: message }));
  console.error(`vercel_embed.mjs: ${step}: ${message}`);
  process.exit(1);
}
