// Drives agenthost with the Vercel AI SDK (`ai` + `@ai-sdk/openai`) on both of the
// provider's APIs. Env: BASE_URL, API_KEY, AGENT, WORD (a marker for the upstream log).
// Prints one JSON object with what it saw; exits non-zero on any failure.
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, stepCountIs, streamText, tool } from "ai";
import { z } from "zod";

const provider = createOpenAI({ baseURL: process.env.BASE_URL, apiKey: process.env.API_KEY });
const agent = process.env.AGENT;
const word = process.env.WORD;
const tools = {
  get_weather: tool({
    description: "The weather in a city.",
    inputSchema: z.object({ city: z.string() }),
    execute: async ({ city }) => `sunny in ${city}`,
  }),
};
const ask = (api) => `${word}-${api}\n!call get_weather {"city": "Paris"}`;

async function generated(api) {
  const result = await generateText({
    model: provider[api](agent),
    prompt: ask(`${api}-generate`),
    tools,
    stopWhen: stepCountIs(3),
    maxRetries: 0,
  });
  return {
    text: result.text,
    steps: result.steps.length,
    toolResults: result.steps.flatMap((s) => s.toolResults.map((r) => r.output)),
    outputTokens: result.totalUsage.outputTokens,
  };
}

async function streamed(api) {
  const result = streamText({
    model: provider[api](agent),
    prompt: ask(`${api}-stream`),
    tools,
    stopWhen: stepCountIs(3),
    maxRetries: 0,
  });
  let text = "";
  let deltas = 0;
  for await (const delta of result.textStream) {
    text += delta;
    deltas += 1;
  }
  return { text, deltas, finish: await result.finishReason };
}

async function refused(api) {
  try {
    await generateText({ model: provider[api]("agent_missing"), prompt: "hi", maxRetries: 0 });
    return null;
  } catch (error) {
    return { status: error.statusCode ?? null, message: String(error.message) };
  }
}

const seen = {};
for (const api of ["chat", "responses"]) {
  seen[api] = { generated: await generated(api), streamed: await streamed(api), refused: await refused(api) };
}
console.log(JSON.stringify(seen));
