// Loads a GGUF file in llama.cpp itself (node-llama-cpp's prebuilt CPU binaries) and runs it on token ids.
// Usage: node llama-cpp.mjs input.json output.json
// input:  [{ "model": "file.gguf", "prompts": [[ids]], "generate": N, "texts": [[ids]], "tokenize": ["text", ...] }, ...]
// output: one object per input object, each model loaded in turn:
//   "continuations": [[ids]]  the greedy (temperature 0) continuation of each prompt: N tokens, or up to an end token
//   "nll": [[-ln p]]          for each text, -ln p(token | the tokens before it) of each token after the first
//   "tokenized": [[ids]]      llama.cpp's own tokenization of each string
//   "architecture", "preTokenizer": as llama.cpp read them from the file
import { readFileSync, writeFileSync } from "node:fs";
import { getLlama } from "node-llama-cpp";

const [inputPath, outputPath] = process.argv.slice(2);
const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
const outputs = [];
for (const input of JSON.parse(readFileSync(inputPath, "utf8"))) {
  const model = await llama.loadModel({ modelPath: input.model });
  // One thread: the test models are tiny, and llama.cpp's default thread pool spins for seconds on two cores.
  const context = await model.createContext({ contextSize: model.trainContextSize, sequences: 1, batchSize: model.trainContextSize, threads: 1 });

  // One sequence, emptied before each prompt and text.
  const sequence = context.getSequence();
  const continuations = [];
  for (const prompt of input.prompts ?? []) {
    await sequence.clearHistory();
    const out = [];
    for await (const token of sequence.evaluate(prompt, { temperature: 0, yieldEogToken: true })) {
      out.push(token);
      if (out.length >= input.generate || model.isEogToken(token)) break;
    }
    continuations.push(out);
  }

  // Every next-token distribution unchanged by sampling settings: temperature 1, no top-k, top-p or min-p cut.
  const unchanged = { temperature: 1, topK: 0, topP: 1, minP: 0 };
  const nll = [];
  for (const text of input.texts ?? []) {
    await sequence.clearHistory();
    const items = text.slice(0, -1).map((token) => [token, { generateNext: { probabilities: true, options: unchanged } }]);
    const results = await sequence.controlledEvaluate(items);
    nll.push(text.slice(1).map((next, i) => -Math.log(results[i].next.probabilities.get(next) ?? 0)));
  }

  const tokenized = (input.tokenize ?? []).map((text) => Array.from(model.tokenize(text, false)));
  outputs.push({
    continuations, nll, tokenized,
    architecture: model.fileInfo.metadata.general.architecture,
    preTokenizer: model.fileInfo.metadata.tokenizer?.ggml?.pre ?? null,
  });
  await context.dispose();
  await model.dispose();
}
writeFileSync(outputPath, JSON.stringify(outputs));
await llama.dispose();
