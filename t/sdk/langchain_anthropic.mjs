// langchain_anthropic.mjs - LangChain's ChatAnthropic (@langchain/anthropic)
// as a real client of the gateway's Messages API, streaming.
//
//   node t/sdk/langchain_anthropic.mjs BASE_URL MODEL PROMPT
//
//   BASE_URL  the root the Anthropic client appends /v1/messages to
//
// Streams one answer (model.stream), concatenates the chunks as LangChain
// does (AIMessageChunk.concat: usage_metadata of message_start and
// message_delta are added), and prints ONE JSON line on stdout:
//   {"ok":true,"content","usage":{"input_tokens","output_tokens",
//    "total_tokens"},"cost"}
// ("cost": response_metadata.usage.cost of message_delta, when sent.)
// On failure: {"ok":false,"error"} on stdout, the message on stderr,
// exit 1.

import { ChatAnthropic } from '@langchain/anthropic';

const [baseURL, model, prompt] = process.argv.slice(2);

if (!baseURL || !model) {
  console.error('usage: langchain_anthropic.mjs BASE_URL MODEL PROMPT');
  process.exit(2);
}

try {
  const llm = new ChatAnthropic({
    model,
    apiKey: 'sk-test-client',
    anthropicApiUrl: baseURL,
    maxTokens: 256,
    maxRetries: 0,
    streaming: true,
  });

  let full;
  for await (const chunk of await llm.stream(prompt || 'Say hello')) {
    full = full ? full.concat(chunk) : chunk;
  }

  const content = typeof full.content === 'string'
    ? full.content
    : full.content.filter((b) => b.type === 'text' || b.type === 'text_delta')
        .map((b) => b.text).join('');

  console.log(JSON.stringify({
    ok: true,
    content,
    usage: full.usage_metadata ?? null,
    cost: full.response_metadata?.usage?.cost ?? null,
  }));
} catch (err) {
  const message = err?.message ?? String(err);
  console.log(JSON.stringify({ ok: false, error: message }));
  console.error(`langchain_anthropic.mjs: ${message}`);
  process.exit(1);
}
