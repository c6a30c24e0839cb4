"""The reader's sentence-choice features and the name check (rag/answer/features.py, reader.py)."""

from __future__ import annotations

import numpy as np

from rag.answer import features as ft
from rag.answer.reader import missing_names
from rag.schema import Passage


def _passage(text: str) -> Passage:
    return Passage(0, "d", "", "", None, text, 0, len(text), 1.0)


def test_hyphenated_and_possessive_names_count_when_their_parts_are_mentioned():
    passages = [_passage("Xi Jinping met Vladimir Putin. China and Russia signed a deal.")]
    assert missing_names("What did Xi's plan for China-Russia relations say?", passages) == []
    assert missing_names("What did Xi’s government say?", passages) == []
    assert missing_names("What did Norway-Sweden say?", passages) == ["Norway-Sweden"]


def test_features_reward_the_sentence_with_the_asked_type_and_the_rare_words():
    question = "In which city did Putin meet Xi?"
    candidates = [
        ft.Candidate("Relations between the two countries reached unprecedented closeness.", 0, 0, 0.55),
        ft.Candidate("Putin met Xi in Beijing on Friday.", 0, 1, 0.50),
    ]
    x = ft.features(question, candidates)
    col = {name: i for i, name in enumerate(ft.FEATURES)}
    assert x.shape == (2, len(ft.FEATURES))
    assert x[1, col["bm25"]] == 1.0 and x[0, col["bm25"]] == 0.0
    assert x[1, col["names"]] == 1.0 and x[0, col["names"]] == 0.0
    assert x[1, col["type_phrase"]] == 1.0 and x[1, col["typed_question"]] == 1.0
    assert x[1, col["prev_dense"]] == 0.55 and x[0, col["next_dense"]] == 0.50
    # the shipped weights (fitted on XQuAD's tune half) prefer the sentence that answers
    model = ft.load_model()
    assert model is not None, "rag/answer/reader_model.json is missing: run benchmarks/fit_reader.py"
    fused = ft.fused_scores(question, candidates, model)
    assert np.argmax(fused) == 1 and ((fused > 0) & (fused < 1)).all()
    row = ft.refusal_features(question, candidates, x, fused, missing=False)
    assert len(row) == len(ft.REFUSAL_FEATURES)
    assert 0 <= ft.unanswerable_probability(row, model) <= 1
    # a swapped-in name no sentence holds is seen
    swapped = "In which city did Putin meet Erdogan?"
    other = ft.refusal_features(swapped, candidates, ft.features(swapped, candidates), fused, missing=False)
    absent = ft.REFUSAL_FEATURES.index("absent_name")
    assert other[absent] == 1.0 and row[absent] == 0.0


def test_rare_words_are_counted_by_the_collection_idf():
    from rag.store.lexical import Bm25, tokenize

    collection = Bm25.build(enumerate([
        "Putin met Xi in Beijing.", "Putin spoke in Moscow.", "Putin and Xi met.", "The Kremlin said so.",
    ]))
    idf = collection.idf(tokenize("Putin Beijing Ulaanbaatar"))
    putin, beijing, unseen = (idf[t] for t in tokenize("Putin Beijing Ulaanbaatar"))
    assert beijing > putin > 0 and unseen == beijing  # a term no chunk holds counts as seen once
    question = "Was Putin in Beijing?"
    candidates = [ft.Candidate("Putin travelled.", 0, 0, 0.5), ft.Candidate("He went to Beijing.", 0, 1, 0.5)]
    col = ft.FEATURES.index("collection_idf")
    by_collection = ft.features(question, candidates, collection.idf)[:, col]
    assert by_collection[1] > by_collection[0]  # Beijing is the rarer word in the collection
    rarest = ft.FEATURES.index("rarest_word")
    assert ft.features(question, candidates, collection.idf)[:, rarest].tolist() == [0.0, 1.0]
    # without a collection, the candidates themselves are counted: both words equally rare
    by_candidates = ft.features(question, candidates)[:, col]
    assert by_candidates[0] == by_candidates[1]


def test_weights_fitted_on_other_features_are_not_used(tmp_path):
    import json

    stale = tmp_path / "model.json"
    stale.write_text(json.dumps({"features": ["dense"], "weights": [1.0]}))
    assert ft.load_model(tmp_path / "absent.json") is None
    assert ft.load_model(stale) is None
    assert ft.load_model() is not None
