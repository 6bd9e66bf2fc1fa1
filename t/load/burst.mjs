// burst.mjs - N identical POSTs sent at once (t/65-cache.t: a thousand
// concurrent requests on a cold cache key).
//
//   node t/load/burst.mjs URL BODY_JSON N
//
// Prints ONE JSON line: {"status": {code: count}, "cache": {X-AI-Cache:
// count}, "contents": number of distinct answer texts, "errors": [...]}.

const [url, body, n] = process.argv.slice(2);

const status = {};
const cache = {};
const contents = new Set();
const errors = [];

async function one() {
  try {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    const json = await res.json();
    status[res.status] = (status[res.status] ?? 0) + 1;
    const c = res.headers.get('x-ai-cache') ?? 'none';
    cache[c] = (cache[c] ?? 0) + 1;
    contents.add(json?.choices?.[0]?.message?.content ?? null);
  } catch (err) {
    errors.push(String(err?.cause?.code ?? err?.message ?? err));
  }
}

await Promise.all(Array.from({ length: Number(n) }, one));

console.log(JSON.stringify({ status, cache, contents: contents.size,
                             errors: errors.slice(0, 5),
                             error_count: errors.length }));
