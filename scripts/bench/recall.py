#!/usr/bin/env python3
"""Recall@k of the supporting passages of QA questions, through running retrieval daemons.

  scripts/bench/recall.py --qa runs/world/test.jsonl --k 3 \\
      --daemon bm25=http://127.0.0.1:8001/retrieve --daemon dense=http://127.0.0.1:8002/retrieve

For each question with a non-empty `support` (the built-in world's test questions list the ids of
the passages that answer them), the question is sent as one query with topk=k; its recall is the
share of its supporting ids among the k documents returned. Prints a Markdown table of the mean
recall by hop count (and over all questions) per daemon, then one JSON line
`recall: {"bm25": {"1": 0.93, ..., "all": 0.8}, ...}`. Standard library only.
"""
import argparse
import json
import sys
import urllib.request
from collections import defaultdict


def retrieve(url, queries, k):
    body = json.dumps({"queries": queries, "topk": k, "return_scores": False}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.loads(r.read())["result"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--qa", required=True, help="FlashRAG JSONL with hops and support")
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--daemon", action="append", required=True, help="NAME=URL of /retrieve")
    ap.add_argument("--batch", type=int, default=16, help="queries per request")
    args = ap.parse_args()
    questions = []
    with open(args.qa) as f:
        for line in f:
            if line.strip():
                q = json.loads(line)
                if q.get("support"):
                    questions.append(q)
    if not questions:
        sys.exit(f"{args.qa}: no question lists supporting passages")
    out = {}
    for spec in args.daemon:
        name, url = spec.split("=", 1)
        by_hops = defaultdict(list)
        for i in range(0, len(questions), args.batch):
            chunk = questions[i:i + args.batch]
            lists = retrieve(url, [q["question"] for q in chunk], args.k)
            for q, docs in zip(chunk, lists):
                got = {str(d["id"]) for d in docs}
                support = [str(s) for s in q["support"]]
                r = sum(s in got for s in support) / len(support)
                by_hops[str(q.get("hops", "?"))].append(r)
                by_hops["all"].append(r)
        out[name] = {h: round(sum(v) / len(v), 4) for h, v in sorted(by_hops.items())}
        out[name]["questions"] = len(by_hops["all"])
    hops = sorted({h for v in out.values() for h in v if h not in ("all", "questions")})
    print(f"| retriever | " + " | ".join(f"{h}-hop" for h in hops) + " | all | questions |")
    print("| --- |" + " --- |" * (len(hops) + 2))
    for name, v in out.items():
        cells = [f"{v[h]:.3f}" if h in v else "-" for h in hops]
        print(f"| {name} | " + " | ".join(cells) + f" | {v['all']:.3f} | {v['questions']} |")
    print("recall: " + json.dumps(out))


if __name__ == "__main__":
    main()
