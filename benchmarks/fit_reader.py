"""Fit the reader's sentence-choice weights (rag/answer/features.py) and its refusal classifier
on the tune half of XQuAD's articles, and measure both on the held-out half.

Sentence choice: a logistic regression over every candidate sentence of the retrieved
passages, labelled by whether it holds the gold answer text. Refusal: a logistic regression
over per-question features of the ranking (best fused score, margin to the runner-up, best
dense cosine, type match, coverage of the question's rare words, names the passages miss),
with the answerable questions against the constructed unanswerables of rag.evaluate (own
paragraph removed, key name or number swapped); its threshold is the highest that refuses at
most 5 % of the tune half's answerable questions.

    python benchmarks/fit_reader.py ../shared/datasets/xquad/xquad.en.json --work DIR [--write]

Embeddings of questions and sentences are cached in DIR (embeddings.npz), so a second run
only fits. --write stores the weights in rag/answer/reader_model.json (shipped in the package).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag import evaluate as ev  # noqa: E402
from rag.answer import features as ft  # noqa: E402
from rag.answer.reader import missing_names  # noqa: E402

REFUSAL_FEATURES = ft.REFUSAL_FEATURES


class CachedEmbedder:
    """The assistant's embedder with a disk cache of every text it has embedded."""

    def __init__(self, embedder, path: Path):
        self.embedder, self.path = embedder, path
        self.cache: dict[str, np.ndarray] = {}
        if path.exists():
            data = np.load(path)
            self.cache = dict(zip(data["keys"].tolist(), data["vectors"]))
        self.dirty = False

    def encode(self, texts):
        keys = [hashlib.sha1(t.encode()).hexdigest() for t in texts]
        todo = [(k, t) for k, t in zip(keys, texts) if k not in self.cache]
        if todo:
            vectors = self.embedder.encode([t for _, t in todo])
            self.cache.update(zip([k for k, _ in todo], vectors))
            self.dirty = True
        return np.stack([self.cache[k] for k in keys])

    encode_recurring = encode  # the reader embeds its candidate sentences through this one

    def save(self) -> None:
        if self.dirty:
            keys = list(self.cache)
            np.savez(self.path, keys=np.array(keys), vectors=np.stack([self.cache[k] for k in keys]))


def refusal_row(question: str, passages, reader, model) -> list[float]:
    _, rows = reader.candidates(question, passages)
    x = ft.features(question, rows, reader.idf)
    fused = ft.fused_scores(question, rows, model, x) if rows else np.zeros(0)
    return ft.refusal_features(question, rows, x, fused, bool(missing_names(question, passages)),
                               reader.idf)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("squad", type=Path)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--write", action="store_true", help="store rag/answer/reader_model.json")
    args = parser.parse_args()
    from sklearn.linear_model import LogisticRegression

    items = ev.load_squad(args.squad)
    split = ev.halves_of(items)
    paragraphs = ev.paragraphs_of(items)
    articles = ev.articles_of(paragraphs)
    assistant, mapping = ev._assistant(args.work, paragraphs, False, generator="extractive")
    reader = assistant.reader
    cached = CachedEmbedder(assistant.embedder, args.work / "embeddings.npz")
    reader.embedder = cached
    k = assistant.settings.top_k

    # -- sentence choice --------------------------------------------------------------------
    data: dict[str, list] = {"tune": [], "held-out": []}
    retrieved = {}
    for n, item in enumerate(items):
        deeper = assistant.retriever.run(item.question, 3 * k)
        retrieved[item.id] = deeper
        _, rows = reader.candidates(item.question, deeper[:k])
        if rows:
            x = ft.features(item.question, rows, reader.idf)
            y = np.array([ev.contains_gold(r.text, item.answers) for r in rows], dtype=int)
            data[split[item.title]].append((item, rows, x, y))
        if n % 200 == 0:
            print(f"{n}/{len(items)} questions", file=sys.stderr)
            cached.save()
    cached.save()
    x_tune = np.vstack([x for _, _, x, _ in data["tune"]])
    y_tune = np.concatenate([y for _, _, _, y in data["tune"]])
    mean, scale = x_tune.mean(axis=0), x_tune.std(axis=0) + 1e-9
    clf = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000)
    clf.fit((x_tune - mean) / scale, y_tune)
    model = {"features": list(ft.FEATURES), "mean": mean.tolist(), "scale": scale.tolist(),
             "weights": clf.coef_[0].tolist(), "bias": float(clf.intercept_[0]),
             "fitted_on": f"tune half of {args.squad.name} ({len(data['tune'])} questions, "
                          f"{len(y_tune)} sentences); benchmarks/fit_reader.py"}
    for half in ("tune", "held-out"):
        dense = fused = total = 0
        for item, rows, x, y in data[half]:
            total += 1
            dense += y[int(np.argmax(x[:, 0]))]
            fused += y[int(np.argmax(ft.fused_scores(item.question, rows, model, x)))]
        print(f"{half}: top sentence holds the gold text: dense {100 * dense / total:.1f} %, "
              f"fused {100 * fused / total:.1f} % ({total} questions with candidates)")
    print("weights:", dict(zip(ft.FEATURES, np.round(clf.coef_[0], 2).tolist())))

    # -- refusal ----------------------------------------------------------------------------
    sets: dict[str, tuple[list, list]] = {"tune": ([], []), "held-out": ([], [])}
    for item in items:
        xs, ys = sets[split[item.title]]
        deeper = retrieved[item.id]
        xs.append(refusal_row(item.question, deeper[:k], reader, model))
        ys.append(0)
        without = [p for p in deeper if mapping.get(p.doc_id) != item.paragraph][:k]
        xs.append(refusal_row(item.question, without, reader, model))
        ys.append(1)
        swapped = ev.swapped_question(item, articles[item.title])
        if swapped:
            xs.append(refusal_row(swapped, assistant.retriever.run(swapped, k), reader, model))
            ys.append(1)
    cached.save()
    xr, yr = np.array(sets["tune"][0]), np.array(sets["tune"][1])
    rmean, rscale = xr.mean(axis=0), xr.std(axis=0) + 1e-9
    rclf = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000)
    rclf.fit((xr - rmean) / rscale, yr)
    p_tune = rclf.predict_proba((xr - rmean) / rscale)[:, 1]
    answerable = np.sort(p_tune[yr == 0])
    threshold = float(answerable[int(0.95 * len(answerable))])  # refuse above: ≤ 5 % false refusals
    model["refusal"] = {"features": list(REFUSAL_FEATURES), "mean": rmean.tolist(),
                        "scale": rscale.tolist(), "weights": rclf.coef_[0].tolist(),
                        "bias": float(rclf.intercept_[0]), "threshold": threshold}
    for half in ("tune", "held-out"):
        x, y = np.array(sets[half][0]), np.array(sets[half][1])
        p = rclf.predict_proba((x - rmean) / rscale)[:, 1]
        refuse = p > threshold
        print(f"{half}: unanswerables refused {100 * refuse[y == 1].mean():.1f} % "
              f"({(y == 1).sum()}), answerable refused {100 * refuse[y == 0].mean():.1f} % "
              f"({(y == 0).sum()})")
    print("refusal weights:", dict(zip(REFUSAL_FEATURES, np.round(rclf.coef_[0], 2).tolist())))
    if args.write:
        ft.MODEL_FILE.write_text(json.dumps(model, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {ft.MODEL_FILE.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
