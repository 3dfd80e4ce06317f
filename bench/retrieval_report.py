#!/usr/bin/env python3
"""Summarises scripts/bench/retrieval.sh: a Markdown table per corpus and the closing line.

Reads <work>/<dataset>/{strata.json,strata_english.json,baselines.json,hits/*.txt} for each
dataset given, in order; the ratios of the closing line come from the last (largest) dataset.
overlap@10 = |A ∩ B| / max(|A|, |B|) per query (queries where both are empty are skipped),
averaged.
"""
import argparse
import json
import os


def read_jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def read_hits(path):
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return [[x for x in line.rstrip("\n").split("\t") if x] for line in f]


def overlap(a, b):
    if a is None or b is None:
        return None
    vals = []
    for x, y in zip(a, b):
        if not x and not y:
            continue
        vals.append(len(set(x) & set(y)) / max(len(x), len(y)))
    return sum(vals) / len(vals) if vals else None


def fmt(v, digits=1):
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return ("%%.%df" % digits) % v
    return str(v)


def mib(n):
    return "%.1f MiB" % (n / 1048576.0) if n else "n/a"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--work", required=True)
    p.add_argument("--datasets", required=True, help="comma-separated subdirectories of --work")
    p.add_argument("--server-rps", default="na")
    p.add_argument("--server-p99", default="na")
    args = p.parse_args()
    last = None
    for name in args.datasets.split(","):
        d = os.path.join(args.work, name)
        rows = []
        for sysname, path in [("strata (porter, default)", "strata.json"),
                              ("strata (--stemmer english)", "strata_english.json")]:
            r = read_jsonl(os.path.join(d, path))
            if r:
                rows.append((sysname, r[0]))
        for r in read_jsonl(os.path.join(d, "baselines.json")):
            rows.append(("%s %s" % (r["system"], r.get("version", "")), r))
        hits = {key: read_hits(os.path.join(d, "hits", key + ".txt"))
                for key in ("strata", "strata_english", "bm25s", "xapian", "pisa", "tantivy",
                            "bm25turbo")}
        ndocs = rows[0][1].get("num_docs") if rows else 0
        qpath = os.path.join(d, "queries.txt")
        nq = sum(1 for line in open(qpath, encoding="utf-8") if line.strip()) \
            if os.path.exists(qpath) else "?"
        print("\n### %s: %s passages, %s queries, top-10 with contents, single thread\n"
              % (name, ndocs, nq))
        print("(strata latencies are over 3 passes of the queries; the baselines' over one.)\n")
        print("| system | QPS | p50 ms | p99 ms | build docs/s | index size | overlap@10 vs bm25s |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        keys = {"strata (porter, default)": "strata", "strata (--stemmer english)": "strata_english"}
        for sysname, r in rows:
            key = keys.get(sysname, r.get("system"))
            ov = overlap(hits.get(key), hits.get("bm25s")) if key != "bm25s" else None
            print("| %s | %s | %s | %s | %s | %s | %s |" % (
                sysname, fmt(r.get("qps"), 0), fmt(r.get("p50_ms"), 3), fmt(r.get("p99_ms"), 3),
                fmt(r.get("docs_per_s"), 0), mib(r.get("index_bytes", 0)), fmt(ov, 3)))
        st = dict(rows).get("strata (porter, default)")
        if st and "batch_qps" in st:
            print("\nstrata search_batch on all cores: %.0f QPS; index load (mmap) %.1f ms; "
                  "exact-vs-exhaustive mismatches: %s"
                  % (st["batch_qps"], st["load_ms"], st.get("verify_mismatches", "not checked")))
        if st and st.get("slowest"):
            print("\nThe slowest %d queries (1%%; each by its fastest pass), with the document "
                  "frequency of each index term:\n" % len(st["slowest"]))
            print("| ms | query | terms (df) |")
            print("|---:|---|---|")
            for q in st["slowest"]:
                terms = ", ".join("%s (%d)" % (t["term"], t["df"]) for t in q["terms"])
                print("| %.2f | %s | %s |" % (q["ms"], q["query"].replace("|", "/"), terms))
        last = (rows, hits)
    qps = {}
    for sysname, r in last[0]:
        qps[sysname.split()[0] if "strata" not in sysname else sysname] = r.get("qps")
    s = qps.get("strata (porter, default)")
    ratio = lambda other: ("%.2f" % (s / other)) if s and other else "na"
    ov = overlap(last[1].get("strata"), last[1].get("bm25s"))
    st = dict(last[0]).get("strata (porter, default)", {})
    tail = ("%.1f" % (st["p99_ms"] / st["p50_ms"])) if st.get("p50_ms") else "na"
    print("\nretrieval: qps_vs_bm25s=%s qps_vs_xapian=%s overlap10=%s server_rps=%s p99_ms=%s" % (
        ratio(qps.get("bm25s")), ratio(qps.get("xapian")),
        ("%.3f" % ov) if ov is not None else "na", args.server_rps, args.server_p99))
    print("retrieval: qps_vs_pisa=%s qps_vs_tantivy=%s qps_vs_turbo=%s p99_over_p50=%s" % (
        ratio(qps.get("pisa")), ratio(qps.get("tantivy")), ratio(qps.get("bm25turbo")), tail))


if __name__ == "__main__":
    main()
