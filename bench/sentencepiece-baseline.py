#!/usr/bin/python3
"""SentencePiece BPE baseline for the tokenizer benchmark (Debian's python3-sentencepiece; run with /usr/bin/python3).

    /usr/bin/python3 bench/sentencepiece-baseline.py bench/data 32000
Prints training wall time, encoding throughput on one core and bytes per token on the held-out text.
"""
import os, sys, time
import sentencepiece as spm

data, vocab = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 32000
corpus, heldout = os.path.join(data, "corpus.txt"), os.path.join(data, "heldout.txt")
prefix = os.path.join(data, f"spm-{vocab}")
start = time.time()
spm.SentencePieceTrainer.train(input=corpus, model_prefix=prefix, vocab_size=vocab, model_type="bpe",
    character_coverage=0.9995, byte_fallback=True, num_threads=1, max_sentence_length=1 << 16,
    input_sentence_size=0, minloglevel=2)
train_seconds = time.time() - start
sp = spm.SentencePieceProcessor(model_file=prefix + ".model")
lines = open(corpus, encoding="utf-8").read().splitlines()
held = open(heldout, encoding="utf-8").read().splitlines()
start = time.time()
for line in lines: sp.encode(line)
encode_seconds = time.time() - start
corpus_bytes = sum(len(l.encode()) + 1 for l in lines)
held_bytes = sum(len(l.encode()) for l in held)
held_tokens = sum(len(sp.encode(l)) for l in held)
print(f"sentencepiece {spm.__version__}: vocab {vocab}, corpus {corpus_bytes/1e6:.1f} MB, train {train_seconds:.1f} s, "
      f"encode {corpus_bytes/1e6/encode_seconds:.1f} MB/s (one core), held-out {held_bytes/held_tokens:.3f} bytes/token")
