"""The chunker, with the packaged model's real tokenizer: a heading the splitter leaves alone is
joined to the piece after it, never beyond the model's window; offsets stay exact."""

from __future__ import annotations

import pytest

from rag.ingest.chunk import HEADING_TOKENS, Chunker
from rag.schema import Chunk, Document

ORGANS = ["liver", "kidney", "heart", "lung", "spleen", "thymus", "retina", "pancreas"]
GENES = ["TP53", "BRCA1", "KRAS", "MYC", "PTEN", "EGFR", "CDKN2A", "APC", "NOTCH1"]


def paragraph(sentences: int, seed: int = 0) -> str:
    """One long paragraph (no blank line inside) of varied sentences, about 20 tokens each."""
    out = []
    for i in range(seed, seed + sentences):
        out.append(f"In the {ORGANS[i % len(ORGANS)]} of {i + 3} mice, loss of {GENES[i % len(GENES)]} "
                   f"raised the expression of {GENES[(i * 5 + 2) % len(GENES)]} by {i * 7 % 90 + 5} percent.")
    return " ".join(out)


TITLE = "Loss of TP53 in hepatocytes drives fibrosis through KRAS signalling in aged mice"


@pytest.fixture(scope="module")
def tokenizer(embedder):
    return embedder.tokenizer


@pytest.fixture(scope="module")
def window(embedder) -> int:
    return embedder.max_tokens  # 256 for MiniLM, its 2 special tokens included


@pytest.fixture(scope="module")
def chunker(tokenizer, window) -> Chunker:
    return Chunker.for_tokenizer(tokenizer, 200, 40, window)


def n_tokens(tokenizer, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def check_invariants(chunks: list[Chunk], docs: list[Document], first_id: int = 0) -> None:
    texts = {d.id: d.text for d in docs}
    assert [c.id for c in chunks] == list(range(first_id, first_id + len(chunks)))
    for doc in docs:
        mine = [c for c in chunks if c.doc_id == doc.id]
        assert [c.ordinal for c in mine] == list(range(len(mine)))
        assert mine[0].start == 0 and mine[-1].end == len(doc.text.rstrip())
        for a, b in zip(mine, mine[1:]):  # in order; overlapping or apart by whitespace only
            assert a.start < b.start and (b.start <= a.end or not doc.text[a.end:b.start].strip())
    for c in chunks:
        assert texts[c.doc_id][c.start:c.end] == c.text and c.text.strip() == c.text


def test_title_is_joined_to_a_long_abstract(chunker, tokenizer):
    doc = Document("a.txt", TITLE, "a.txt", f"{TITLE}\n\n{paragraph(30)}")
    assert n_tokens(tokenizer, paragraph(30)) > 400  # the splitter cannot merge it with the title
    plain = Chunker(200, 40, chunker._count, heading_tokens=0)  # the splitter alone, as before
    assert plain.run([doc])[0].text == TITLE
    chunks = chunker.run([doc])
    assert all(c.text != TITLE for c in chunks)
    assert chunks[0].text.startswith(f"{TITLE}\n\n") and len(chunks[0].text) > len(TITLE) + 100
    assert n_tokens(tokenizer, chunks[0].text) > 200  # longer than chunk_size, as allowed
    check_invariants(chunks, [doc])


def test_joined_chunks_never_exceed_the_window(chunker, tokenizer, window):
    # titles from 1 word to just under the heading limit, before abstracts of many lengths
    words = (TITLE + " " + " ".join(ORGANS + GENES)).split()
    docs = []
    for i in range(1, len(words) + 1):
        title = " ".join(words[:i])
        if n_tokens(tokenizer, title) >= HEADING_TOKENS:
            break
        body = "\n\n".join(paragraph(n, seed=100 * i + 30 * k)  # no sentence twice in a document
                             for k, n in enumerate((i % 7 + 3, 25, i % 13 + 9)))
        docs.append(Document(f"{i}.txt", title, f"{i}.txt", f"{title}\n\n{body}"))
    assert max(n_tokens(tokenizer, d.title) for d in docs) >= HEADING_TOKENS - 12
    chunks = chunker.run(docs, first_id=7)
    check_invariants(chunks, docs, first_id=7)
    lengths = [n_tokens(tokenizer, c.text) for c in chunks]
    assert max(lengths) <= window - 2
    assert max(lengths) > 200  # some chunks are joined ones, over chunk_size
    assert all(len(tokenizer(c.text)["input_ids"]) <= window for c in chunks)  # specials included
    titles = {d.title for d in docs}
    assert not [c.text for c in chunks if c.text in titles]


def test_heading_that_would_overflow_the_window_stays_alone(tokenizer, window):
    # chunk_size 240: a 40-token heading and a full piece after it make more than 254 tokens
    chunker = Chunker.for_tokenizer(tokenizer, 240, 40, window)
    heading = ("Hepatic fibrosis, renal failure and cardiac hypertrophy in aged TP53 KRAS double "
               "mutant mice: a longitudinal cohort study of knockout and wild-type littermates")
    assert 30 < n_tokens(tokenizer, heading) < HEADING_TOKENS
    doc = Document("b.txt", heading, "b.txt", f"{heading}\n\n{paragraph(30)}")
    pieces = chunker.splitter.split_text(doc.text)
    assert pieces[0] == heading and n_tokens(tokenizer, f"{heading}\n\n{pieces[1]}") > window - 2
    chunks = chunker.run([doc])
    assert [c.text for c in chunks] == pieces  # the heading kept as it was rather than made too long
    assert max(n_tokens(tokenizer, c.text) for c in chunks) <= window - 2
    check_invariants(chunks, [doc])


def test_markdown_section_headings_are_joined_to_their_section(chunker, tokenizer, window):
    text = (f"# Mouse study\n\n## Methods\n\n{paragraph(20)}\n\n## Results\n\n{paragraph(20, seed=5)}"
            f"\n\n### Short note\n\nNo effect in the thymus.")
    doc = Document("c.md", "Mouse study", "c.md", text)
    chunks = chunker.run([doc])
    check_invariants(chunks, [doc])
    assert not [c.text for c in chunks if c.text.lstrip("#").strip() in
                {"Mouse study", "Methods", "Results", "Short note"}]
    # a run of headings goes with the text after it
    assert chunks[0].text.startswith("# Mouse study\n\n## Methods\n\nIn the liver")
    assert any(c.text.startswith("## Results\n\nIn the") for c in chunks)
    assert max(n_tokens(tokenizer, c.text) for c in chunks) <= window - 2


def test_rule_is_part_of_the_recorded_settings(chunker):
    settings = chunker.settings()
    assert settings["join_heading_under_tokens"] == HEADING_TOKENS
    assert settings["joined_max_tokens"] == 254
