"""Copying decoding (rag/generate/copy.py) on both in-process generators: with the mask, the
packaged SmolLM2's reply is a span of the evidence, word for word (its first letter may be
capitalised), that opens on none of the skipped words; without it, the same prompt gets the
model's own words."""

from __future__ import annotations

import pytest

from rag.config import Settings
from rag.generate import make_generator
from rag.generate.copy import Copy, CopySpan, Vocabulary, cached_vocabulary
from rag.text import QUESTION_WORDS, STOP_WORDS, words

SENTENCE = ("On Friday, President Xi Jinping confirmed that China stands ready to work with Russia "
            "and President Vladimir Putin to chart the future.")
QUESTIONS = ["What is the full name of the Chinese president?", "What is China ready to do?",
             "Who will China work with?"]


def _prompt(question: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": f"[1] {SENTENCE}\n\nQuestion: {question}\n"
             "Answer with the few words of the text that answer the question."}]


@pytest.fixture(scope="module", params=["llamacpp:smollm2", "hf:smollm2"])
def llm(request):
    if request.param.startswith("llamacpp"):
        pytest.importorskip("llama_cpp", reason="llama-cpp-python is installed by `make test`")
    return make_generator(Settings.from_env(generator=request.param, threads=1))


def test_masked_replies_copy_a_span_of_the_evidence(llm):
    assert llm.copies
    free = []
    for question in QUESTIONS:
        skip = frozenset(STOP_WORDS | QUESTION_WORDS | set(words(question)))
        reply = llm.generate(_prompt(question), 16, copy_from=Copy((SENTENCE,), skip)).strip()
        assert reply and (reply in SENTENCE or reply[0].lower() + reply[1:] in SENTENCE), (question, reply)
        assert words(reply)[0] not in skip, (question, reply)
        free.append(llm.generate(_prompt(question), 16, one_sentence=True).strip())
    assert any(f not in SENTENCE for f in free), "unmasked, the model writes words of its own"


def test_the_mask_follows_every_spelling_of_a_span():
    """Text-level states: a span may be reached by any split into tokens, and the end of the
    reply is allowed only where a word ends."""
    pieces = ["", " Xi", " X", "i", " Jin", "ping", " Jinping", "Xi", ".", " the"]
    span = CopySpan(Copy(("President Xi Jinping spoke.",), frozenset({"president"})),
                    Vocabulary(pieces), ends=[0])
    first = span.allowed()
    assert 1 in first and 2 in first and 7 in first and 0 not in first  # "Xi", " X", no end yet
    assert 9 not in first  # " the" is in no span
    span.advance(2)  # " X"
    assert span.allowed() == [3]  # only "i" continues: mid-word, no end
    span.advance(3)
    assert set(span.allowed()) == {0, 4, 6}  # the word ended: " Jin", " Jinping" or stop
    nothing = CopySpan(Copy(("President spoke.",), frozenset({"president", "spoke"})),
                       Vocabulary(pieces), ends=[0])
    assert nothing.allowed() == [0]  # no word may open a copy: the reply ends at once


def test_a_short_answer_is_a_whole_span_of_the_sentence():
    from rag.answer.reader import literal_span
    from rag.schema import Evidence

    sentence = [Evidence(1, "The mayor, José Ruiz, opened the Winter Olympics in 1987.", 0, 0)]
    assert literal_span("winter olympics", sentence) == "Winter Olympics"  # the sentence's spelling
    assert literal_span("Jos", sentence) == ""  # a cut word is no span
    assert literal_span("olympics winter", sentence) == ""  # nor are its words in another order


def test_the_vocabulary_is_kept_in_the_cache_folder(llm, tmp_path):
    """Read from the model once, then from the cache, and asked again when the model changed."""
    asked = []

    def piece(token: int) -> str:
        asked.append(token)
        return llm.vocabulary().pieces[token]

    size = len(llm.vocabulary().pieces)
    first = cached_vocabulary(tmp_path, "model-a", size, piece)
    assert len(asked) == size and first.pieces == llm.vocabulary().pieces
    asked.clear()
    again = cached_vocabulary(tmp_path, "model-a", size, piece)
    assert again.pieces == first.pieces and len(asked) < 10  # only the sample is checked
    asked.clear()
    changed = cached_vocabulary(tmp_path, "model-a", size, lambda t: piece(t) + "x")
    assert len(asked) == size + 1 and changed.pieces[0] == first.pieces[0] + "x"  # sample, then all
