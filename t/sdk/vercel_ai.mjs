// vercel_ai.mjs - the Vercel AI SDK (ai 6 with @ai-sdk/openai) as a real
// client of the gateway's Responses API: createOpenAI({baseURL})(model)
// speaks POST {baseURL}/responses by default.
//
//   node t/sdk/vercel_ai.mjs BASE_URL [MODEL] [PROMPT]
//
//   env AI_GW_TOOL_MODEL   the first step of streamText (default MODEL):
//                          a model the mock answers with a tool call
//   env AI_GW_OBJECT_MODEL generateObject's model (default MODEL)
//
// Runs generateText, streamText with a tool and two steps (the tool call,
// then the answer from MODEL), and generateObject; prints ONE JSON line:
//   {"ok":true,"generate":{text,finishReason,usage},
//    "stream":{text,finishReason,steps,toolCalls,toolResults,usage},
//    "object":{object,finishReason}}
// On failure {"ok":false,"step","error"} and exit 1.

import { createOpenAI } from '@ai-sdk/openai';
import { generateText, streamText, generateObject, tool, stepCountIs } from 'ai';
import { z } from 'zod';

const baseURL = process.argv[2];
const modelName = process.argv[3] || 'openai/gpt-4o';
const prompt = process.argv[4] || 'Say hello';
const toolModel = process.env.AI_GW_TOOL_MODEL || modelName;
const objectModel = process.env.AI_GW_OBJECT_MODEL || modelName;

if (!baseURL) {
  console.error('usage: vercel_ai.mjs BASE_URL [MODEL] [PROMPT]');
  process.exit(2);
}

const openai = createOpenAI({ baseURL, apiKey: 'sk-test-client' });

const weather = tool({
  description: 'Weather for a city',
  inputSchema: z.object({ text: z.string() }),
  execute: async () => '21 degrees',
});

let step = 'generate';
try {
  const result = { ok: true };

  const g = await generateText({ model: openai(modelName), prompt, maxRetries: 0 });
  result.generate = { text: g.text, finishReason: g.finishReason, usage: g.usage };

  step = 'stream';
  const s = streamText({
    model: openai(toolModel),
    prompt,
    tools: { get_weather: weather },
    stopWhen: stepCountIs(2),
    prepareStep: ({ stepNumber }) =>
      stepNumber > 0 ? { model: openai(modelName) } : undefined,
    maxRetries: 0,
    onError: ({ error }) => { throw error; },
  });
  let text = '';
  for await (const delta of s.textStream) text += delta;
  const steps = await s.steps;
  const calls = steps.flatMap((st) => st.toolCalls);
  const results = steps.flatMap((st) => st.toolResults);
  result.stream = {
    text,
    finishReason: await s.finishReason,
    steps: steps.length,
    toolCalls: calls.map((c) => ({ toolName: c.toolName, input: c.input })),
    toolResults: results.map((r) => ({ toolName: r.toolName, output: r.output })),
    usage: await s.totalUsage,
  };

  step = 'object';
  const o = await generateObject({
    model: openai(objectModel),
    schema: z.object({ city: z.string(), temperature: z.number() }),
    prompt,
    maxRetries: 0,
  });
  result.object = { object: o.object, finishReason: o.finishReason };

  console.log(JSON.stringify(result));
} catch (err) {
  const message = err?.message ?? String(err);
  console.log(JSON.stringify({ ok: false, step, error: message,
                               cause: err?.cause?.message ?? null }));
  console.error(`vercel_ai.mjs: ${step}: ${message}`);
  process.exit(1);
}
