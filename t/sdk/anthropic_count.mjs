// anthropic_count.mjs - the official Anthropic Node SDK's
// messages.countTokens against the gateway, for each model named.
//
//   node t/sdk/anthropic_count.mjs BASE_URL MODEL...
//
// Prints ONE JSON line: {"ok":true,"counts":{MODEL: {"input_tokens"} or
// {"status","type","message"} when the SDK threw}}.  Exit 1 only when the
// script itself fails.  Retries off.

import Anthropic from '@anthropic-ai/sdk';

const [baseURL, ...models] = process.argv.slice(2);

if (!baseURL || models.length === 0) {
  console.error('usage: anthropic_count.mjs BASE_URL MODEL...');
  process.exit(2);
}

const client = new Anthropic({ baseURL, apiKey: 'sk-test-client', maxRetries: 0,
                               timeout: 30_000 });

try {
  const counts = {};
  for (const model of models) {
    try {
      const c = await client.messages.countTokens({
        model,
        system: 'You are terse.',
        messages: [{ role: 'user', content: 'What is the weather in Paris?' }],
      });
      counts[model] = { input_tokens: c.input_tokens };
    } catch (err) {
      counts[model] = { status: err?.status ?? null, type: err?.error?.error?.type ?? null,
                        message: err?.error?.error?.message ?? err?.message ?? null };
    }
  }
  console.log(JSON.stringify({ ok: true, counts }));
} catch (err) {
  console.log(JSON.stringify({ ok: false, error: err?.message ?? String(err) }));
  process.exit(1);
}
