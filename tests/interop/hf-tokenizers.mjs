// Encodes a text file with Hugging Face tokenizers (the Rust core, through its Node binding) from a tokenizer.json,
// and decodes the ids again. Usage: node hf-tokenizers.mjs tokenizer.json input.txt output.json
// Output: { "ids": [...], "decoded": "..." }
import { readFileSync, writeFileSync } from "node:fs";
import { Tokenizer } from "@anush008/tokenizers";

const [tokenizerPath, inputPath, outputPath] = process.argv.slice(2);
const tokenizer = Tokenizer.fromFile(tokenizerPath);
const text = readFileSync(inputPath, "utf8");
const encoding = await tokenizer.encode(text, null, { addSpecialTokens: false });
const ids = encoding.getIds();
const decoded = await tokenizer.decode(ids, false);
writeFileSync(outputPath, JSON.stringify({ ids, decoded }));
