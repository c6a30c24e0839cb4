"""The assistant keeps its index in step with the library folder, and never loses it."""

from __future__ import annotations

import logging
from pathlib import Path

from rag import Assistant


def test_builds_index_on_first_use(fresh: Assistant):
    assert not (fresh.settings.index_dir / "CURRENT").exists()
    docs = fresh.documents()
    assert [d.id for d in docs] == ["2022-02-04-xi-putin-meeting.txt"]
    assert docs[0].date == "2022-02-04" and docs[0].chunks >= 2
    assert (fresh.settings.index_dir / "CURRENT").exists()


def test_chunks_fit_the_model_and_keep_offsets(fresh: Assistant):
    index = fresh.index_data
    tokenizer = fresh.embedder.tokenizer
    for chunk in index.chunks.values():
        assert index.document_text(chunk.doc_id)[chunk.start:chunk.end] == chunk.text
        n_tokens = len(tokenizer(chunk.text, add_special_tokens=False)["input_ids"])
        assert n_tokens <= fresh.settings.chunk_size < fresh.embedder.max_tokens
    ordered = sorted(index.chunks.values(), key=lambda c: c.ordinal)
    text = index.document_text(ordered[0].doc_id)
    assert ordered[0].start == 0 and ordered[-1].end == len(text)
    # consecutive chunks overlap or are separated by whitespace only: no text is lost
    for a, b in zip(ordered, ordered[1:]):
        assert b.start <= a.end or not text[a.end:b.start].strip()


def test_reindex_touches_only_the_changed_document(fresh: Assistant):
    fresh.refresh()
    corpus = fresh.settings.corpus_dir
    (corpus / "harbor.txt").write_text("The harbor of Port Elm opened in 1907. " * 3)
    (corpus / "bakery.md").write_text("# Bakery\n\nThe bakery on Main Street sells rye bread.")
    first = fresh.refresh()
    assert sorted(first.added) == ["bakery.md", "harbor.txt"]
    seed_chunks = {cid for cid, c in fresh.index_data.chunks.items() if c.doc_id.endswith("meeting.txt")}

    (corpus / "harbor.txt").write_text("The harbor of Port Elm closed in 1999.")
    (corpus / "bakery.md").touch()  # new mtime, same bytes: hashed, not re-embedded
    report = fresh.refresh()
    assert report.updated == ["harbor.txt"]
    assert report.added == [] and report.removed == []
    assert report.chunks_embedded == 1
    assert sorted(report.unchanged) == ["2022-02-04-xi-putin-meeting.txt", "bakery.md"]
    index = fresh.index_data
    assert seed_chunks <= set(index.chunks)  # untouched documents keep their chunks

    (corpus / "bakery.md").unlink()
    report = fresh.refresh()
    assert report.removed == ["bakery.md"] and report.chunks_embedded == 0
    assert "bakery.md" not in {d.id for d in fresh.documents()}
    assert fresh.search("When did the harbor close?")[0].doc_id == "harbor.txt"


def test_index_survives_a_restart_without_re_embedding(fresh: Assistant):
    fresh.documents()
    again = Assistant(fresh.settings)
    again.__dict__["embedder"] = fresh.embedder
    assert again.refresh().chunks_embedded == 0


def test_changed_splitter_setting_rebuilds_with_a_message(fresh: Assistant, caplog):
    fresh.documents()
    other = Assistant(fresh.settings.replace(chunk_size=120))
    other.__dict__["embedder"] = fresh.embedder
    with caplog.at_level(logging.WARNING, logger="rag"):
        report = other.refresh()
    assert report.rebuilt_because and "splitter" in report.rebuilt_because
    assert "rebuilding" in caplog.text
    assert report.chunks_embedded >= 3


def test_damaged_index_is_rebuilt_from_the_library(fresh: Assistant, caplog):
    fresh.documents()
    gen = fresh.settings.index_dir / (fresh.settings.index_dir / "CURRENT").read_text()
    data = (gen / "vectors.faiss").read_bytes()
    (gen / "vectors.faiss").write_bytes(data[:100])
    again = Assistant(fresh.settings)
    again.__dict__["embedder"] = fresh.embedder
    with caplog.at_level(logging.WARNING, logger="rag"):
        docs = again.documents()
    assert "damaged" in caplog.text
    assert [d.id for d in docs] == ["2022-02-04-xi-putin-meeting.txt"]


def test_add_reports_bad_files_and_keeps_the_rest(fresh: Assistant, tmp_path: Path):
    before = {d.id for d in fresh.documents()}
    (tmp_path / "good.txt").write_text("Ada Lovelace wrote the first published algorithm in 1843.")
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "data.bin").write_bytes(b"\x00\x01\x02")
    (tmp_path / "latin.md").write_bytes(b"\xe9t\xe9 \xe0 Paris")  # Latin-1: read by detection
    (tmp_path / "undecidable.md").write_bytes(bytes(range(128, 256)) * 8)
    names = ("good.txt", "empty.txt", "data.bin", "latin.md", "undecidable.md")
    report = fresh.add([tmp_path / n for n in names])
    assert report.added == ["good.txt", "latin.md"]
    assert sorted(s.path for s in report.skipped) == ["data.bin", "empty.txt", "undecidable.md"]
    assert fresh.document_text("latin.md") == "été à Paris"
    after = {d.id for d in fresh.documents()}
    assert after == before | {"good.txt", "latin.md"}
    assert not (fresh.settings.corpus_dir / "empty.txt").exists()
    assert fresh.remove("good.txt") and not fresh.remove("good.txt")
    assert fresh.remove("latin.md")
    assert {d.id for d in fresh.documents()} == before


def test_unreadable_file_in_library_is_reported_not_dropped(fresh: Assistant):
    corpus = fresh.settings.corpus_dir
    (corpus / "notes.txt").write_text("The committee meets on Tuesdays.")
    fresh.refresh()
    (corpus / "notes.txt").write_bytes(b"\x00\x00 now binary")
    report = fresh.refresh()
    assert [s.path for s in report.skipped] == ["notes.txt"]
    assert "kept the previously indexed version" in report.skipped[0].reason
    assert "notes.txt" in {d.id for d in fresh.documents()}


def test_upload_names_are_sanitised(fresh: Assistant, tmp_path: Path):
    from rag.assistant import safe_filename

    assert safe_filename("../../etc/passwd.txt") == "passwd.txt"
    assert safe_filename("/abs/path/report.md") == "report.md"
    assert safe_filename("a\x00b\x1fc.txt") == "abc.txt"
    assert safe_filename(".hidden.txt") == "hidden.txt"
    long = safe_filename("x" * 500 + ".txt")
    assert long.endswith(".txt") and len(long) <= 160


def test_two_assistants_share_one_index(fresh: Assistant, tmp_path: Path):
    """A second process (here: a second Assistant) picks up the other's saved index instead of
    re-embedding or overwriting it."""
    fresh.documents()
    other = Assistant(fresh.settings)
    other.__dict__["embedder"] = fresh.embedder
    other.documents()
    (tmp_path / "tide.txt").write_text("High tide at Port Elm is at 6:40 in the morning.")
    fresh.add([tmp_path / "tide.txt"])
    report = other.refresh()
    assert report.chunks_embedded == 0
    assert "tide.txt" in {d.id for d in other.documents()}


def test_questions_are_answered_while_documents_are_added(fresh: Assistant, tmp_path: Path):
    import threading

    fresh.documents()
    for i in range(6):
        (tmp_path / f"note{i}.txt").write_text(f"Note {i}: the ferry number {i} leaves at noon. " * 20)
    errors: list[BaseException] = []
    hits: list[int] = []
    stop = threading.Event()

    def ask_repeatedly() -> None:
        while not stop.is_set():
            try:
                hits.append(len(fresh.search("Why did Putin travel to Beijing?")))
            except BaseException as exc:  # any failure fails the test
                errors.append(exc)
                return

    thread = threading.Thread(target=ask_repeatedly)
    thread.start()
    try:
        fresh.add(sorted(tmp_path.glob("note*.txt")))
    finally:
        stop.set()
        thread.join()
    assert not errors
    assert hits and all(n > 0 for n in hits)
    assert len(fresh.documents()) == 7
