// Encodes a text file with tiktoken (the Rust core, as WebAssembly) from a .tiktoken rank file, the special tokens
// and the split pattern, and decodes the ids again. encode_ordinary: text that spells a special token stays text.
// Usage: node tiktoken.mjs tokenizer.tiktoken specials.json pattern.txt input.txt output.json
import { readFileSync, writeFileSync } from "node:fs";
import { Tiktoken } from "tiktoken/lite";

const [ranksPath, specialsPath, patternPath, inputPath, outputPath] = process.argv.slice(2);
const encoder = new Tiktoken(readFileSync(ranksPath, "utf8"), JSON.parse(readFileSync(specialsPath, "utf8")), readFileSync(patternPath, "utf8"));
const text = readFileSync(inputPath, "utf8");
const ids = Array.from(encoder.encode_ordinary(text));
const decoded = new TextDecoder().decode(encoder.decode(Uint32Array.from(ids)));
let specialRaises = false;
try { encoder.encode(text.includes("<|endoftext|>") ? text : "<|endoftext|>"); } catch { specialRaises = true; }
encoder.free();
writeFileSync(outputPath, JSON.stringify({ ids, decoded, specialRaises }));
