// openai_endpoints.mjs - the official openai Node SDK against the
// gateway's other endpoints: embeddings.create (the SDK asks for base64
// unless told otherwise and decodes it itself; also encoding_format float
// with dimensions) and models.retrieve (an id with a '/', which the SDK
// percent-encodes; an unknown id, which must be a 404).
//
//   node t/sdk/openai_endpoints.mjs BASE_URL EMBED_MODEL
//
//   BASE_URL     e.g. http://127.0.0.1:8080/v1
//   EMBED_MODEL  e.g. openai/text-embedding-3-small
//
// Prints ONE JSON line on stdout:
//   {"ok":true,
//    "default": {"object","model","vectors":[[...]...],"usage"},
//    "float":   {"vectors","usage"},
//    "model":   {"id","object","owned_by"},
//    "missing": {"status","name"}}
// On failure: {"ok":false,"step","error","status"}, exit 1.  Retries off.

import OpenAI from 'openai';

const [baseURL, model] = process.argv.slice(2);

if (!baseURL || !model) {
  console.error('usage: openai_endpoints.mjs BASE_URL EMBED_MODEL');
  process.exit(2);
}

const client = new OpenAI({ baseURL, apiKey: 'sk-test-client', maxRetries: 0,
                            timeout: 30_000 });

let step = 'default';
try {
  const result = { ok: true };

  let e = await client.embeddings.create({ model, input: ['hello', 'embedding world'] });
  result.default = { object: e.object, model: e.model,
                     vectors: e.data.map((d) => Array.from(d.embedding)),
                     usage: e.usage };

  step = 'float';
  e = await client.embeddings.create({ model, input: 'abc', dimensions: 2,
                                       encoding_format: 'float' });
  result.float = { vectors: e.data.map((d) => d.embedding), usage: e.usage };

  step = 'retrieve';
  const m = await client.models.retrieve(model);
  result.model = { id: m.id, object: m.object, owned_by: m.owned_by };

  step = 'missing';
  try {
    await client.models.retrieve('openai/no-such-model');
    result.missing = { status: 200 };
  } catch (err) {
    result.missing = { status: err?.status ?? null, name: err?.constructor?.name ?? null };
  }

  console.log(JSON.stringify(result));
} catch (err) {
  const message = err?.message ?? String(err);
  console.log(JSON.stringify({ ok: false, step, error: message, status: err?.status ?? null }));
  console.error(`openai_endpoints.mjs: ${step}: ${message}`);
  process.exit(1);
}
