"""BM25-only retrieval on SciFact (one chunk per abstract): bm25s, the library the keyword
index used before, against the segmented BM25 grown incrementally (half the corpus as the base,
the rest in 20 update segments, every 20th abstract removed and put back). Equal scores mean
hybrid retrieval is unchanged, since the dense side does not change.

    python benchmarks/bm25_equivalence.py /work/shared/datasets/scifact
"""

from __future__ import annotations

import argparse
from pathlib import Path

import bm25s
import numpy as np
import perfkit  # noqa: F401  (puts the repository on sys.path)

from rag.evaluate import load_beir, retrieval_metrics
from rag.store.lexical import Bm25, tokenize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scifact", type=Path)
    args = parser.parse_args()
    data = load_beir(args.scifact)
    docs = list(data.corpus)
    texts = [f"{t}\n\n{x}" for t, x in data.corpus.values()]
    qids = [q for q in data.qrels if q in data.queries]
    qrels = {q: data.qrels[q] for q in qids}
    n = len(texts)
    model = bm25s.BM25(method="lucene", k1=1.2, b=0.75)
    model.index([tokenize(t) or ["_"] for t in texts], show_progress=False)
    chunks = list(enumerate(texts))
    grown = Bm25.build(chunks[:n // 2])
    step = (n - n // 2) // 20 + 1
    for start in range(n // 2, n, step):
        grown.add(chunks[start:start + step])
        len(grown)  # makes the batch a segment
    gone = list(range(0, n, 20))
    grown.remove(gone)
    grown.add((i, texts[i]) for i in gone)
    old: dict[str, dict[str, float]] = {}
    new: dict[str, dict[str, float]] = {}
    same, worst = 0, 0.0
    for q in qids:
        tokens = [t for t in tokenize(data.queries[q]) if t in model.vocab_dict]
        scores = model.get_scores(tokens) if tokens else np.zeros(n)
        top = np.argsort(-scores, kind="stable")[:100]
        old[q] = {docs[i]: float(scores[i]) for i in top if scores[i] > 0}
        hits = grown.search(data.queries[q], 100)
        new[q] = {docs[i]: s for i, s in hits}
        worst = max([worst] + [abs(s - float(scores[i])) / float(scores[i]) for i, s in hits])
        same += [docs[i] for i, _ in hits[:10]] == list(old[q])[:10]
    print(f"{len(grown.segments)} segments")
    print("bm25s   ", retrieval_metrics(qrels, old))
    print("segments", retrieval_metrics(qrels, new))
    print(f"identical top-10 order: {same}/{len(qids)}; largest relative score difference {worst:.2e}")


if __name__ == "__main__":
    main()
