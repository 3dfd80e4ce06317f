#!/usr/bin/env python3
"""Reference neighbours from faiss itself (faiss-cpu), for tests/retrieval/dense_test.cpp.

  faiss_reference.py INDEX.faiss K OUT.json DOC [DOC ...]

Reads the index, reconstructs the stored vectors of the given rows, searches them with k and
writes {"ids": [[...], ...], "scores": [[...], ...]}. Exit 3 when faiss is not installed.
"""
import json
import sys

try:
    import faiss
    import numpy as np
except ImportError as e:  # the test skips on 3
    print(f"faiss-cpu is not installed: {e}", file=sys.stderr)
    sys.exit(3)


def main():
    path, k, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    docs = [int(d) for d in sys.argv[4:]]
    index = faiss.read_index(path)
    queries = np.stack([index.reconstruct(d) for d in docs]).astype(np.float32)
    scores, ids = index.search(queries, k)
    with open(out, "w") as f:
        json.dump({"ids": ids.tolist(), "scores": scores.tolist(),
                   "ntotal": index.ntotal, "d": index.d}, f)


if __name__ == "__main__":
    main()
