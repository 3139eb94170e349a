"""Reads an llm.c token file as llm.c's loader does (dev/data/data_common.py): 256 int32 header, then the tokens.

Usage: python3 llmc_read.py FILE OUT_JSON -> {"magic", "version", "count", "tokens": [...]}"""
import json
import sys

import numpy as np


def main():
    path, out_path = sys.argv[1:3]
    header = np.fromfile(path, dtype=np.int32, count=256)
    dtype = {1: np.uint16, 2: np.uint32}[int(header[1])]
    tokens = np.fromfile(path, dtype=dtype, offset=256 * 4)
    assert len(tokens) == header[2], (len(tokens), header[2])
    json.dump({"magic": int(header[0]), "version": int(header[1]), "count": int(header[2]), "tokens": tokens.tolist()}, open(out_path, "w"))


if __name__ == "__main__":
    main()
