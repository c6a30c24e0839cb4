"""Choose the convex-fusion weight (RAG_DENSE_WEIGHT) without tuning on the test queries.

SciFact ships no training queries, so the judged queries are split in two folds (even and odd
positions): the weight is chosen on one fold and scored on the other, and the two held-out
scores are averaged (2-fold cross-validation). The dense and BM25 candidate lists are computed
once per query; only the fusion is repeated per weight.

    python benchmarks/fusion_cv.py ../shared/datasets/scifact --write
"""

from __future__ import annotations

import sys
from pathlib import Path

import evalkit
import numpy as np

from rag.config import Settings
from rag.evaluate import ndcg_at_k
from rag.retrieve import fuse

WEIGHTS = [round(w, 2) for w in np.arange(0.0, 1.0001, 0.05)]


def main() -> int:
    parser = evalkit.parser(__doc__, "beir_dir")
    parser.add_argument("--candidates", type=int, default=300, help="dense and BM25 list length")
    parser.add_argument("--work", type=Path, default=None, help="index folder (reused between runs)")
    args = parser.parse_args()

    settings = Settings.from_env()
    data, qids, assistant, mapping = evalkit.beir_assistant(args.beir_dir, args.work)
    index = assistant.index_data
    lists = {}
    for qid in qids:
        text = data.queries[qid]
        dense = [(p.chunk_id, p.score) for p in index.search(assistant.embedder.encode_query(text),
                                                             args.candidates)]
        lists[qid] = (dense, index.lexical().search(text, args.candidates))

    def ndcg(qid: str, fusion: str, weight: float) -> float:
        scores: dict[str, float] = {}
        for cid, score in fuse(*lists[qid], fusion, weight)[: args.candidates]:
            doc = mapping.get(index.chunks[cid].doc_id, index.chunks[cid].doc_id)
            scores[doc] = max(scores.get(doc, float("-inf")), score)
        return ndcg_at_k(data.qrels[qid], scores)

    table = {w: np.array([ndcg(q, "convex", w) for q in qids]) for w in WEIGHTS}
    rrf = np.array([ndcg(q, "rrf", 0.0) for q in qids])
    folds = [np.arange(len(qids)) % 2 == i for i in (0, 1)]
    held_out, chosen = [], []
    for tune, test in ((folds[0], folds[1]), (folds[1], folds[0])):
        best = max(WEIGHTS, key=lambda w: table[w][tune].mean())
        chosen.append(best)
        held_out.append(table[best][test].mean())
    default = settings.dense_weight
    lines = [
        "### Fusion weight, chosen by 2-fold cross-validation on SciFact",
        "",
        f"{len(qids)} judged queries split into two folds; the weight is chosen on one fold and "
        "nDCG@10 measured on the other.",
        "",
        "| fusion | weight | nDCG@10 |",
        "| --- | --- | --- |",
        f"| convex, chosen on the other fold (held-out mean) | {chosen[0]:g} / {chosen[1]:g} | "
        f"{np.mean(held_out):.3f} |",
        f"| convex, default | {default:g} | {table[round(default, 2)].mean():.3f} |",
        f"| convex, dense only | 1 | {table[1.0].mean():.3f} |",
        f"| convex, BM25 only | 0 | {table[0.0].mean():.3f} |",
        f"| reciprocal rank fusion (k=60) | - | {rrf.mean():.3f} |",
        "",
        "nDCG@10 by weight (all queries): "
        + ", ".join(f"{w:g}: {table[w].mean():.3f}" for w in WEIGHTS[::2]),
    ]
    return evalkit.finish(lines, f"python benchmarks/fusion_cv.py {args.beir_dir}", "fusion-cv", args.write)


if __name__ == "__main__":
    sys.exit(main())
