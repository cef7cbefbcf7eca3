// The openai npm SDK against chat2api: prints one JSON object of what it got.
// OPENAI_BASE_URL and OPENAI_API_KEY come from the test (tests/clients/test_node.py).
import OpenAI from "openai";
import { zodResponseFormat } from "openai/helpers/zod";
import { z } from "zod";

const client = new OpenAI({ maxRetries: 0 });
const out = {};

const stream = await client.chat.completions.create({
  model: "gpt-4o",
  messages: [{ role: "user", content: "say exactly: streamed from node" }],
  stream: true,
  stream_options: { include_usage: true },
});
const pieces = [];
let usage = null;
for await (const chunk of stream) {
  if (chunk.choices[0]?.delta?.content) pieces.push(chunk.choices[0].delta.content);
  if (chunk.usage) usage = chunk.usage;
}
out.stream = { text: pieces.join(""), chunks: pieces.length, usage };

const response = await client.responses.create({
  model: "gpt-4o",
  input: "say exactly: responses from node",
});
out.responses = { text: response.output_text, status: response.status, id: response.id };

const City = z.object({ name: z.string(), population: z.number().int() });
const parsed = await client.chat.completions.parse({
  model: "gpt-4o",
  messages: [{ role: "user", content: "Describe a city. #sim:json=schema" }],
  response_format: zodResponseFormat(City, "city"),
});
out.parse = parsed.choices[0].message.parsed;

console.log(JSON.stringify(out));
