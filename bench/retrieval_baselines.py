#!/usr/bin/env python3
"""BM25 baselines for scripts/bench/retrieval.sh: bm25s, Xapian, PISA (pyterrier-pisa), tantivy
and bm25-turbo on the same corpus and queries.

For each system: index build time and size, then single-thread top-k latency per query, where a
query costs tokenising it, retrieving and fetching each hit's id and contents (what strata's
bm25_bench times too). Writes one JSON line per system to --out and each query's hit ids
(tab-separated corpus ids, one line per query) to --hits-dir/<system>.txt.

Settings matched to strata's index: k1/b as given, Lucene's 33 English stop words, Snowball
English stemmer; bm25s with method="lucene"; Xapian with BM25Weight(k1, k2=0, k3=1, b).
Where the engines differ:
  pisa       k1/b as given; PISA's tokenizer, its "lucene" stop list (the same 33 words) and
             porter2 (Snowball English), but stop words are dropped from queries only: they
             count in document lengths (strata, bm25s and Xapian drop them before counting, as
             Lucene does); block_simdbp index, block-max WAND (its defaults), exact
             BM25 scores (no quantisation); queries go to _pisathon.retrieve one at a time (no
             pandas frame per query). PISA keeps no contents: they come from a Python list.
  tantivy    tantivy's BM25 has k1 = 1.2, b = 0.75 fixed (not settable from Python); the analyzer
             is set to match: simple tokenizer, lowercase, the 33 stop words, Snowball English.
             Contents are a stored field, fetched per hit.
  bm25turbo  method="lucene" with k1/b as given; its index() tokenizer only lowercases and
             splits, so the corpus and each query are analysed first as for bm25s (PyStemmer
             English, the 33 stop words) and passed as space-joined stems; contents from a list.
"""
import argparse
import json
import os
import shutil
import sys
import time


def load_corpus(path):
    ids, contents = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            rec = json.loads(line)
            ids.append(str(rec["id"]))
            if "contents" in rec:
                contents.append(rec["contents"])
            else:
                contents.append('"%s"\n%s' % (rec.get("title", ""), rec["text"]))
    return ids, contents


def package_version(name):
    from importlib import metadata
    return metadata.version(name)


def dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            total += os.path.getsize(os.path.join(root, name))
    return total


def percentile(values, p):
    v = sorted(values)
    return v[min(len(v) - 1, int(p * len(v)))] if v else 0.0


def timed_queries(queries, run_one, k):
    for q in queries[: min(50, len(queries))]:  # warm-up
        run_one(q, k)
    lat, hits = [], []
    t_all = time.perf_counter()
    for q in queries:
        t0 = time.perf_counter()
        ids = run_one(q, k)
        lat.append((time.perf_counter() - t0) * 1000.0)
        hits.append(ids)
    total = time.perf_counter() - t_all
    return {
        "queries": len(queries),
        "qps": len(queries) / total,
        "p50_ms": percentile(lat, 0.50),
        "p99_ms": percentile(lat, 0.99),
        "mean_ms": total * 1000.0 / len(queries),
    }, hits


def run_bm25s(args, ids, contents, queries):
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    t0 = time.perf_counter()
    tokens = bm25s.tokenize(contents, stopwords="en", stemmer=stemmer, show_progress=False)
    retriever = bm25s.BM25(k1=args.k1, b=args.b, method="lucene")
    retriever.index(tokens, show_progress=False)
    build_s = time.perf_counter() - t0
    path = os.path.join(args.work, "bm25s_index")
    shutil.rmtree(path, ignore_errors=True)
    retriever.save(path, corpus=[{"id": i, "contents": c} for i, c in zip(ids, contents)])
    size = dir_bytes(path)

    def run_one(q, k):
        qt = bm25s.tokenize([q], stopwords="en", stemmer=stemmer, return_ids=False,
                            show_progress=False)
        if not qt[0]:
            return []
        try:
            docs, scores = retriever.retrieve(qt, k=k, n_threads=1, show_progress=False)
        except ValueError:  # no query token is in the vocabulary
            return []
        out = []
        for d, s in zip(docs[0], scores[0]):
            if s > 0:
                out.append((ids[int(d)], contents[int(d)]))
        return [i for i, _ in out]

    stats, hits = timed_queries(queries, run_one, args.k)
    stats.update({"system": "bm25s", "build_s": build_s, "docs_per_s": len(ids) / build_s,
                  "index_bytes": size, "version": bm25s.__version__})
    return stats, hits


# Lucene's English stop words (what strata's analyzer drops).
STOP_WORDS = ["a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in",
              "into", "is", "it", "no", "not", "of", "on", "or", "such", "that", "the",
              "their", "then", "there", "these", "they", "this", "to", "was", "will", "with"]


def run_xapian(args, ids, contents, queries):
    import xapian

    stop_words = STOP_WORDS
    stopper = xapian.SimpleStopper()
    for w in stop_words:
        stopper.add(w)
    stem = xapian.Stem("english")
    path = os.path.join(args.work, "xapian_index")
    shutil.rmtree(path, ignore_errors=True)
    t0 = time.perf_counter()
    db = xapian.WritableDatabase(path, xapian.DB_CREATE_OR_OVERWRITE)
    tg = xapian.TermGenerator()
    tg.set_stemmer(stem)
    tg.set_stemming_strategy(xapian.TermGenerator.STEM_ALL)
    tg.set_stopper(stopper)
    tg.set_stopper_strategy(xapian.TermGenerator.STOP_ALL)
    for n, text in enumerate(contents):
        doc = xapian.Document()
        tg.set_document(doc)
        tg.index_text(text)
        doc.set_data(text)
        db.add_document(doc)
        if n % 100000 == 99999:
            db.commit()
    db.commit()
    build_s = time.perf_counter() - t0
    db.close()
    size = dir_bytes(path)

    db = xapian.Database(path)
    qp = xapian.QueryParser()
    qp.set_stemmer(stem)
    qp.set_stemming_strategy(xapian.QueryParser.STEM_ALL)
    qp.set_stopper(stopper)
    qp.set_default_op(xapian.Query.OP_OR)
    qp.set_database(db)
    enquire = xapian.Enquire(db)
    enquire.set_weighting_scheme(xapian.BM25Weight(args.k1, 0, 1, args.b, 0.5))

    def run_one(q, k):
        enquire.set_query(qp.parse_query(q, 0))
        out = []
        for m in enquire.get_mset(0, k):
            out.append((ids[m.docid - 1], m.document.get_data()))
        return [i for i, _ in out]

    stats, hits = timed_queries(queries, run_one, args.k)
    stats.update({"system": "xapian", "build_s": build_s, "docs_per_s": len(ids) / build_s,
                  "index_bytes": size, "version": xapian.version_string()})
    return stats, hits


def run_pisa(args, ids, contents, queries):
    import numpy as np
    import pyterrier_pisa
    from pyterrier_pisa import _pisathon

    path = os.path.join(args.work, "pisa_index")
    shutil.rmtree(path, ignore_errors=True)
    index = pyterrier_pisa.PisaIndex(path, stemmer="porter2", stops="lucene", threads=1)
    t0 = time.perf_counter()
    index.index({"docno": str(n), "text": c} for n, c in enumerate(contents))
    build_s = time.perf_counter() - t0
    size = dir_bytes(path)
    retr = index.bm25(k1=args.k1, b=args.b, num_results=args.k, threads=1)
    ctxt = retr._ctxt  # the prepared index; queries go straight to PISA, without pandas frames
    algorithm = retr.query_algorithm.value
    qidx = np.empty(args.k, dtype=np.int32)
    docnos = np.empty(args.k, dtype=object)
    ranks = np.empty(args.k, dtype=np.int32)
    scores = np.empty(args.k, dtype=np.float32)

    def run_one(q, k):
        n = _pisathon.retrieve(ctxt, algorithm, [(0, q)], k=k, threads=1, query_weighted=0,
                               pretokenised=False, result_qidxs=qidx, result_docnos=docnos,
                               result_ranks=ranks, result_scores=scores)
        out = []
        for j in range(n):
            d = int(docnos[j])
            out.append((ids[d], contents[d]))
        return [i for i, _ in out]

    stats, hits = timed_queries(queries, run_one, args.k)
    stats.update({"system": "pisa", "build_s": build_s, "docs_per_s": len(ids) / build_s,
                  "index_bytes": size, "version": pyterrier_pisa.__version__})
    return stats, hits


def run_tantivy(args, ids, contents, queries):
    import re

    import tantivy

    path = os.path.join(args.work, "tantivy_index")
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("body", stored=False, tokenizer_name="strata_en", index_option="freq")
    sb.add_text_field("contents", stored=True, index_option="basic", tokenizer_name="raw")
    sb.add_unsigned_field("row", stored=True, indexed=False)
    schema = sb.build()
    analyzer = (tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
                .filter(tantivy.Filter.lowercase())
                .filter(tantivy.Filter.custom_stopword(STOP_WORDS))
                .filter(tantivy.Filter.stemmer("english")).build())
    t0 = time.perf_counter()
    index = tantivy.Index(schema, path=path)
    index.register_tokenizer("strata_en", analyzer)
    writer = index.writer(heap_size=1_000_000_000, num_threads=1)
    for n, c in enumerate(contents):
        writer.add_document(tantivy.Document(body=c, contents=c, row=n))
    writer.commit()
    writer.wait_merging_threads()
    build_s = time.perf_counter() - t0
    size = dir_bytes(path)
    index.reload()
    searcher = index.searcher()
    special = re.compile(r"[^\w\s]+")  # query syntax characters: the words alone, OR-ed

    def run_one(q, k):
        query, _ = index.parse_query_lenient(special.sub(" ", q), ["body"])
        out = []
        for _, addr in searcher.search(query, k).hits:
            doc = searcher.doc(addr)
            out.append((ids[doc["row"][0]], doc["contents"][0]))
        return [i for i, _ in out]

    stats, hits = timed_queries(queries, run_one, args.k)
    stats.update({"system": "tantivy", "build_s": build_s, "docs_per_s": len(ids) / build_s,
                  "index_bytes": size, "version": package_version("tantivy"),
                  "k1": 1.2, "b": 0.75})
    return stats, hits


def run_bm25turbo(args, ids, contents, queries):
    import Stemmer
    from bm25_turbo_python import BM25

    stemmer = Stemmer.Stemmer("english")
    stops = set(STOP_WORDS)
    word = __import__("re").compile(r"\w+")

    def analyse(text):
        return " ".join(stemmer.stemWords([w for w in word.findall(text.lower()) if w not in stops]))

    path = os.path.join(args.work, "bm25turbo_index")
    t0 = time.perf_counter()
    engine = BM25(method="lucene", k1=args.k1, b=args.b)
    engine.index([analyse(c) for c in contents])
    build_s = time.perf_counter() - t0
    size = 0
    try:
        engine.save(path)
        size = os.path.getsize(path) if os.path.isfile(path) else dir_bytes(path)
    except Exception as e:  # persistence is an optional feature of the wheel
        print("bm25turbo: no index size (save failed: %s)" % e, file=sys.stderr)

    def run_one(q, k):
        a = analyse(q)
        if not a:
            return []
        docs, scores = engine.search(a, k=k)
        out = []
        for d, s in zip(docs, scores):
            if s > 0:
                out.append((ids[int(d)], contents[int(d)]))
        return [i for i, _ in out]

    stats, hits = timed_queries(queries, run_one, args.k)
    stats.update({"system": "bm25turbo", "build_s": build_s, "docs_per_s": len(ids) / build_s,
                  "index_bytes": size, "version": package_version("bm25-turbo")})
    return stats, hits


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--corpus", required=True)
    p.add_argument("--queries", required=True, help="one query per line")
    p.add_argument("--work", required=True, help="scratch directory for the indexes")
    p.add_argument("--out", required=True, help="JSON lines, one per system (appended)")
    p.add_argument("--hits-dir", required=True)
    p.add_argument("--systems", default="bm25s,xapian")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--k1", type=float, default=0.9)
    p.add_argument("--b", type=float, default=0.4)
    args = p.parse_args()
    os.makedirs(args.work, exist_ok=True)
    os.makedirs(args.hits_dir, exist_ok=True)
    ids, contents = load_corpus(args.corpus)
    with open(args.queries, encoding="utf-8") as f:
        queries = [line.rstrip("\n") for line in f if line.strip()]
    runners = {"bm25s": run_bm25s, "xapian": run_xapian, "pisa": run_pisa,
               "tantivy": run_tantivy, "bm25turbo": run_bm25turbo}
    for name in args.systems.split(","):
        print("baseline %s: %d passages, %d queries" % (name, len(ids), len(queries)),
              file=sys.stderr, flush=True)
        stats, hits = runners[name](args, ids, contents, queries)
        stats["num_docs"] = len(ids)
        with open(os.path.join(args.hits_dir, name + ".txt"), "w", encoding="utf-8") as f:
            for row in hits:
                f.write("\t".join(row) + "\n")
        with open(args.out, "a", encoding="utf-8") as f:
            f.write(json.dumps(stats) + "\n")


if __name__ == "__main__":
    main()
