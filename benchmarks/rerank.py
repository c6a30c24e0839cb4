"""Does a reranking stage pay? nDCG@10 on a BEIR folder with and without the sentence-level
reranker (rag.retrieve.SentenceReranker) over the default hybrid retriever, on the same index.

The first stage's top candidates are re-scored once per query (best sentence cosine); each
mixing weight is then a cheap recombination. Weight 1 is the first stage alone.

    python benchmarks/rerank.py ../shared/datasets/scifact --candidates 20 --write
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import evalkit
import numpy as np

from rag.evaluate import ndcg_at_k
from rag.retrieve import SentenceReranker

WEIGHTS = (1.0, 0.75, 0.5, 0.25, 0.0)


def main() -> int:
    parser = evalkit.parser(__doc__, "beir_dir")
    parser.add_argument("--candidates", type=int, default=20, help="first-stage passages re-scored")
    parser.add_argument("--limit", type=int, default=None, help="first N judged queries only")
    parser.add_argument("--work", type=Path, default=None, help="index folder (reused between runs)")
    args = parser.parse_args()

    data, qids, assistant, mapping = evalkit.beir_assistant(args.beir_dir, args.work)
    qids = qids[: args.limit]
    reranker = SentenceReranker(assistant.retriever, assistant.embedder, args.candidates)
    ndcg = {w: [] for w in WEIGHTS}
    first_seconds, rerank_seconds = [], []
    for qid in qids:
        started = time.perf_counter()
        passages = assistant.retriever.run(data.queries[qid], args.candidates)
        first_seconds.append(time.perf_counter() - started)
        started = time.perf_counter()
        best = reranker.best_sentences(data.queries[qid], passages)
        rerank_seconds.append(time.perf_counter() - started)
        for w in WEIGHTS:
            scores: dict[str, float] = {}
            for p in reranker.combine(passages, best, w):
                doc = mapping.get(p.doc_id, p.doc_id)
                scores[doc] = max(scores.get(doc, float("-inf")), p.score)
            ndcg[w].append(ndcg_at_k(data.qrels[qid], scores))
    lines = [
        f"### Reranking: sentence-level rescoring of the top {args.candidates} hybrid passages "
        f"({args.beir_dir.name}, {len(qids)} queries)",
        "",
        "| first-stage weight | nDCG@10 |",
        "| --- | --- |",
    ]
    for w in WEIGHTS:
        label = "1 (no reranking)" if w == 1.0 else f"{w:g}"
        lines.append(f"| {label} | {np.mean(ndcg[w]):.3f} |")
    lines += [
        "",
        f"Median time per query: first stage {1000 * np.median(first_seconds):.0f} ms, reranking "
        f"{1000 * np.median(rerank_seconds):.0f} ms (2-core machine).",
    ]
    command = f"python benchmarks/rerank.py {args.beir_dir} --candidates {args.candidates}"
    return evalkit.finish(lines, command, "rerank", args.write)


if __name__ == "__main__":
    sys.exit(main())
