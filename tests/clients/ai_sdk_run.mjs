// The Vercel AI SDK's default OpenAI model (`openai("...")`, the Responses API) run once against a base
// URL on this machine, for tests/integration/test_ai_sdk.py (see tests/support/ai_sdk.py).
//
//   node ai_sdk_run.mjs SCENARIO PROMPT
//
// with AI_SDK_BASE_URL (with /v1), AI_SDK_API_KEY and AI_SDK_MODEL in the environment. SCENARIO is
// `generate` (generateText), `stream` (streamText, every text delta collected), `tool` (generateText
// with an `exec_command` tool and a step limit, so the SDK runs the tool and sends its result back) or
// `tool-unstored` (the same with the provider option `store: false`: the SDK then replays the earlier
// output items in full instead of referring to them by `item_reference`) or `stream-tool-unstored`
// (that tool loop with streamText). It
// prints one JSON object on stdout: what the SDK returned (text, deltas, steps, tool calls and results,
// finish reason, usage), or {"error": ...} with exit code 1 when the SDK threw. Retries are off: an
// error answer ends the run at once.
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, jsonSchema, stepCountIs, streamText, tool } from "ai";
import { z } from "zod";

const [scenario, prompt] = process.argv.slice(2);
const provider = createOpenAI({
  baseURL: process.env.AI_SDK_BASE_URL,
  apiKey: process.env.AI_SDK_API_KEY,
});
const model = provider(process.env.AI_SDK_MODEL);
const common = { model, prompt, maxRetries: 0 };

// The tool "runs" a command without a shell: it answers with the command upper-cased, which the prompt
// does not contain, so a final answer quoting it proves the SDK sent the result back.
const execute = async ({ cmd }) => `ran: ${cmd.toUpperCase()}`;
const tools = {
  // one tool with a zod schema, one with a plain JSON schema: both are what users write
  exec_command: tool({
    description: "Run a shell command and return what it printed",
    inputSchema: z.object({ cmd: z.string().describe("the command line") }),
    execute,
  }),
  read_file: tool({
    description: "Read a file",
    inputSchema: jsonSchema({
      type: "object",
      properties: { path: { type: "string" } },
      required: ["path"],
      additionalProperties: false,
    }),
    execute: async ({ path }) => `contents of ${path}`,
  }),
};

function summary(result, steps) {
  return {
    text: result.text,
    finishReason: result.finishReason,
    usage: result.usage,
    steps: steps.map((step) => ({
      text: step.text,
      finishReason: step.finishReason,
      toolCalls: step.toolCalls.map((call) => ({ toolCallId: call.toolCallId, toolName: call.toolName, input: call.input })),
      toolResults: step.toolResults.map((res) => ({ toolCallId: res.toolCallId, toolName: res.toolName, output: res.output })),
      responseId: step.response?.id ?? null,
    })),
  };
}

// streamText, every text delta collected; an error part (the SDK streams errors as parts) ends the run
async function streamed(options) {
  const result = streamText(options);
  const deltas = [];
  for await (const part of result.fullStream) {
    if (part.type === "text-delta") deltas.push(part.text);
    if (part.type === "error") throw part.error;
  }
  const [text, finishReason, usage, steps] = await Promise.all([
    result.text, result.finishReason, result.usage, result.steps,
  ]);
  return { ...summary({ text, finishReason, usage }, steps), deltas };
}

const unstored = { openai: { store: false } };
const loop = { tools, stopWhen: stepCountIs(4) };

async function run() {
  if (scenario === "generate") {
    const result = await generateText(common);
    return summary(result, result.steps);
  }
  if (scenario === "stream") return streamed(common);
  if (scenario === "tool") {
    const result = await generateText({ ...common, ...loop });
    return summary(result, result.steps);
  }
  if (scenario === "tool-unstored") {
    const result = await generateText({ ...common, ...loop, providerOptions: unstored });
    return summary(result, result.steps);
  }
  if (scenario === "stream-tool-unstored") return streamed({ ...common, ...loop, providerOptions: unstored });
  throw new Error(`unknown scenario ${scenario}`);
}

try {
  process.stdout.write(JSON.stringify(await run()) + "\n");
} catch (error) {
  const described = { name: error?.name, message: String(error?.message ?? error) };
  if (error?.statusCode !== undefined) described.statusCode = error.statusCode;
  if (error?.responseBody !== undefined) described.responseBody = error.responseBody;
  process.stdout.write(JSON.stringify({ error: described }) + "\n");
  process.exitCode = 1;
}
