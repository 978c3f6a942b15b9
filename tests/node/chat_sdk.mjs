// Drives agenthost with the official openai Node SDK. Env: BASE_URL, API_KEY, AGENT.
// Prints one JSON object with what it saw; exits non-zero on any failure.
import OpenAI from "openai";

const client = new OpenAI({ baseURL: process.env.BASE_URL, apiKey: process.env.API_KEY, maxRetries: 0 });
const model = process.env.AGENT;
const tools = ["a", "b"].map((name) => ({
  type: "function",
  function: { name, parameters: { type: "object", properties: { x: { type: "integer" } } } },
}));

async function streamedText() {
  const stream = await client.chat.completions.create({
    model,
    messages: [{ role: "user", content: "!text node says hi" }],
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = "";
  let role = null;
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices) {
      role = role ?? choice.delta.role ?? null;
      text += choice.delta.content ?? "";
      finish = choice.finish_reason ?? finish;
    }
  }
  return { text, role, finish, completionTokens: usage?.completion_tokens ?? null };
}

async function streamedToolCalls() {
  const stream = await client.chat.completions.create({
    model,
    messages: [{ role: "user", content: '!call a {"x": 1}\n!call b {"x": 2}' }],
    tools,
    stream: true,
  });
  const calls = [];
  for await (const chunk of stream) {
    for (const delta of chunk.choices[0]?.delta?.tool_calls ?? []) {
      const call = (calls[delta.index] ??= { id: "", name: "", arguments: "" });
      call.id += delta.id ?? "";
      call.name += delta.function?.name ?? "";
      call.arguments += delta.function?.arguments ?? "";
    }
  }
  return calls.map((c) => ({ ...c, arguments: JSON.parse(c.arguments) }));
}

async function helperAccumulates() {
  // The SDK's own stream helper must assemble the same message.
  const runner = client.chat.completions.stream({
    model,
    messages: [{ role: "user", content: '!call b {"x": 3}' }],
    tools,
  });
  const done = await runner.finalChatCompletion();
  return done.choices[0].message.tool_calls.map((c) => c.function.name);
}

const plain = await client.chat.completions.create({ model, messages: [{ role: "user", content: "!text plain" }] });
const models = [];
for await (const m of client.models.list()) models.push(m.id);
let missing = null;
try {
  await client.chat.completions.create({ model: "agent_" + "x".repeat(21), messages: [{ role: "user", content: "hi" }] });
} catch (err) {
  missing = { status: err.status, code: err.code, type: err.type };
}

console.log(
  JSON.stringify({
    streamed: await streamedText(),
    toolCalls: await streamedToolCalls(),
    helper: await helperAccumulates(),
    plain: plain.choices[0].message.content,
    models,
    missing,
  }),
);
