#!/usr/bin/env python3
"""The Python baseline of scripts/bench/dense.sh: Search-R1's dense retrieval recipe, written here
from its description (FastAPI + uvicorn, a `transformers` encoder with mean pooling and L2
normalisation, a faiss IndexFlatIP, the corpus JSONL held in memory; POST /retrieve takes
{"queries", "topk", "return_scores"} and answers {"result": [...]} as strata's daemon does).

  dense_baseline.py build --model DIR --corpus C.jsonl --out INDEX.faiss [--batch 64]
        encodes the corpus (FlashRAG's index builder: batches, no prefix) -> prints passages/s
  dense_baseline.py serve --model DIR --corpus C.jsonl --index INDEX.faiss --port P
        serves /retrieve; each request's queries are encoded in one batch (no cross-request
        batching, as Search-R1's server)

--threads sets torch's and faiss's threads. Needs fastapi, uvicorn, transformers, torch, faiss-cpu
(scripts/bench/dense.sh installs pinned versions).
"""
import argparse
import json
import sys
import time


def load_encoder(model_dir, threads):
    import torch
    from transformers import AutoModel, AutoTokenizer
    torch.set_num_threads(threads)
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModel.from_pretrained(model_dir).eval()

    def encode(texts, max_length):
        with torch.inference_mode():
            batch = tok(texts, padding=True, truncation=True, max_length=max_length,
                        return_tensors="pt")
            out = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(out.dtype)
            pooled = (out * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            return pooled.numpy().astype("float32")

    return encode


def read_corpus(path):
    docs = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                d = json.loads(line)
                if "contents" not in d:
                    d["contents"] = '"%s"\n%s' % (d.get("title", ""), d.get("text", ""))
                docs.append({"id": str(d["id"]), "contents": d["contents"]})
    return docs


def build(args):
    import faiss
    import numpy as np
    faiss.omp_set_num_threads(args.threads)
    encode = load_encoder(args.model, args.threads)
    docs = read_corpus(args.corpus)
    t0 = time.time()
    vecs = [encode([d["contents"] for d in docs[i:i + args.batch]], args.max_length)
            for i in range(0, len(docs), args.batch)]
    x = np.concatenate(vecs)
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    faiss.write_index(index, args.out)
    secs = time.time() - t0
    print(f"baseline build: passages={len(docs)} seconds={secs:.2f} "
          f"passages_per_s={len(docs) / secs:.1f}")


def serve(args):
    import faiss
    import uvicorn
    from fastapi import FastAPI
    from pydantic import BaseModel
    faiss.omp_set_num_threads(args.threads)
    encode = load_encoder(args.model, args.threads)
    docs = read_corpus(args.corpus)
    index = faiss.read_index(args.index)
    assert index.ntotal == len(docs), (index.ntotal, len(docs))

    class Request(BaseModel):
        queries: list[str]
        topk: int | None = None
        return_scores: bool = False

    app = FastAPI()

    @app.post("/retrieve")
    def retrieve(req: Request):  # a plain def: FastAPI runs it on its thread pool
        k = req.topk or 3
        q = encode(req.queries, args.max_length)
        scores, ids = index.search(q, k)
        result = []
        for row_s, row_i in zip(scores, ids):
            if req.return_scores:
                result.append([{"document": docs[i], "score": float(s)}
                               for s, i in zip(row_s, row_i) if i >= 0])
            else:
                result.append([docs[i] for i in row_i if i >= 0])
        return {"result": result}

    @app.get("/health")
    def health():
        return {"status": "ok", "documents": len(docs)}

    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("build", "serve"):
        p = sub.add_parser(name)
        p.add_argument("--model", required=True)
        p.add_argument("--corpus", required=True)
        p.add_argument("--threads", type=int, default=1)
        p.add_argument("--max-length", type=int, default=256)
        if name == "build":
            p.add_argument("--out", required=True)
            p.add_argument("--batch", type=int, default=64)
        else:
            p.add_argument("--index", required=True)
            p.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    build(args) if args.cmd == "build" else serve(args)


if __name__ == "__main__":
    sys.exit(main())
