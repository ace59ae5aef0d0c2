// Streams requests through the proxy with an official SDK and prints, per
// request, one JSON line of what the SDK saw. Run by sdk_test.go:
//   node client.cjs NODE_MODULES openai|anthropic BASE_URL MODEL REQUESTS MAX_TOKENS
'use strict';
const path = require('path');
const [modules, sdk, base, model, requests, maxTokens] = process.argv.slice(2);

function load(name) {
  const m = require(path.join(modules, name));
  return m.default || m.OpenAI || m.Anthropic || m;
}

async function viaOpenAI() {
  const OpenAI = load('openai');
  const client = new OpenAI({ apiKey: 'unused', baseURL: base + '/v1', maxRetries: 0 });
  const out = { text: '', reasoning: '', events: 0 };
  const stream = await client.responses.create({
    model, input: 'Tell me a story.', stream: true, max_output_tokens: Number(maxTokens),
  });
  for await (const ev of stream) {
    out.events++;
    if (ev.type === 'response.output_text.delta') out.text += ev.delta;
    else if (ev.type === 'response.reasoning_summary_text.delta') out.reasoning += ev.delta;
    else if (ev.type === 'response.completed') {
      const u = ev.response.usage;
      out.input_tokens = u.input_tokens;
      out.output_tokens = u.output_tokens;
      out.reasoning_tokens = u.output_tokens_details ? u.output_tokens_details.reasoning_tokens : undefined;
    }
  }
  return out;
}

async function viaAnthropic() {
  const Anthropic = load('@anthropic-ai/sdk');
  const client = new Anthropic({ apiKey: 'unused', baseURL: base, maxRetries: 0 });
  const out = { text: '', reasoning: '', events: 0 };
  const stream = client.messages.stream({
    model, max_tokens: Number(maxTokens), messages: [{ role: 'user', content: 'Tell me a story.' }],
  });
  stream.on('streamEvent', () => { out.events++; });
  stream.on('text', (t) => { out.text += t; });
  stream.on('thinking', (t) => { out.reasoning += t; });
  const msg = await stream.finalMessage();
  out.input_tokens = msg.usage.input_tokens;
  out.output_tokens = msg.usage.output_tokens;
  out.stop_reason = msg.stop_reason;
  return out;
}

(async () => {
  for (let i = 0; i < Number(requests); i++) {
    const out = sdk === 'openai' ? await viaOpenAI() : await viaAnthropic();
    process.stdout.write(JSON.stringify(out) + '\n');
  }
})().catch((err) => {
  process.stderr.write(String(err && err.stack || err) + '\n');
  process.exit(1);
});
