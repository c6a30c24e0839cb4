"""The documents people have: Word, PowerPoint, Excel, CSV/TSV, EPUB, OpenDocument, RTF, JSON,
e-mail, PDF, scans and images, each written by the library that makes it (tests/formats.py),
read, indexed through `rag index` and the page's upload, and answered from; the file's
properties fill the document; scans are read by OCR when tesseract is installed and get a
clear message when it is not; unreadable files are reported once, not at every scan."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from rag import Assistant
from rag.ingest import load_file
from tests import formats
from tests.conftest import ROOT

OCR = shutil.which("tesseract") is not None
needs_ocr = pytest.mark.skipif(not OCR, reason="tesseract-ocr is not installed (make test installs it)")
SAMPLES = [s for s in formats.SAMPLES if OCR or not s.ocr]


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("formats")
    formats.write_all(folder, ocr=OCR)
    return folder


def cli(*args: str, env: dict[str, str] | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    full = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], env=full, capture_output=True,
                          text=True, timeout=timeout)


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: s.name)
def test_each_format_is_read(library: Path, sample):
    doc = load_file(library / sample.name)
    assert sample.expected.lower() in doc.text.lower(), doc.text


PROPERTIES = {
    # file: (title, author, date) from the file's own properties (title from the name otherwise)
    "survey.docx": ("Harbour Survey 1987", "Alma Ruiz", "2021-03-04"),
    "transport.pptx": ("Island Transport Review", "Per Holm", "2023-09-01"),
    "revenue.xlsx": ("Regional revenue", "Finance team", "2022-11-30"),
    "fjord.epub": ("Stories of the Fjord", "Sigrid Vang", "2019-05-17"),
    "bees.odt": ("Bee census 2019", "Ola Nordmann", "2019-08-20"),
    "trams.rtf": ("Tram history", "Karin Ek", "2018-02-09"),
    "observatory.json": ("Observatory log", "Edvin Stjerne", "2020-06-01"),
    "boiler.eml": ("Boiler inspection in block C", "Nina Berg <nina@example.org>", "2023-05-02"),
    "stations.csv": ("Stations", None, None),
}


@pytest.mark.parametrize("name", sorted(PROPERTIES))
def test_properties_fill_the_document(library: Path, name: str):
    doc = load_file(library / name)
    assert (doc.title, doc.author, doc.date) == PROPERTIES[name]


def test_structure_becomes_markdown(library: Path):
    """Headings, slide titles, sheet names and chapters become Markdown headings; tables keep
    their header row; a spreadsheet row keeps its header with every value."""
    docx = load_file(library / "survey.docx").text
    assert "# Lighthouses\n\n" in docx and "## Keepers" in docx and "- Keepers served" in docx
    assert "| Keeper | Years |\n|---|---|\n| Alma Ruiz | 1980-1995 |" in docx
    pptx = load_file(library / "transport.pptx").text
    assert "## Ferry timetable\n\nThe night ferry" in pptx and "Notes: Mention the winter" in pptx
    xlsx = load_file(library / "revenue.xlsx").text
    assert "## Revenue\n\nRegion: North, Quarter: Q3, Revenue (M €): 4.2, Manager: Ingrid Solberg" in xlsx
    assert "## Staff\n\nName: Ingrid Solberg, Office: Tromsø" in xlsx
    assert "Station: Kelvin Halt, Opened: 1911, Platforms: 3" in load_file(library / "stations.csv").text
    epub = load_file(library / "fjord.epub").text
    assert epub.startswith("# The Glass Mill") and "# The Harbour" in epub
    assert "# Bee census" in load_file(library / "bees.odt").text
    eml = load_file(library / "boiler.eml").text
    assert "## Boiler inspection" in eml and "Inspector: Arvid Dahl" in eml and "Subject: Boiler" in eml
    jsonl = load_file(library / "bakery.jsonl").text
    assert "recipe: Rye bread, baker: Oskar Lind, oven_minutes: 55" in jsonl
    assert "Café Linden" in load_file(library / "trams.rtf").text


def test_headings_are_section_boundaries(library: Path, embedder):
    """No chunk runs from one section of a converted document into the next."""
    from rag.ingest.chunk import Chunker, sections

    chunker = Chunker.for_tokenizer(embedder.tokenizer, 200, 40, embedder.max_tokens)
    for name in ("survey.docx", "transport.pptx", "revenue.xlsx", "fjord.epub"):
        doc = load_file(library / name)
        bounds = sections(doc.text)
        assert len(bounds) >= 2, name
        for chunk in chunker.run([doc]):
            assert any(a <= chunk.start and chunk.end <= b for a, b in bounds), (name, chunk.text)


def test_the_date_header_still_wins(tmp_path: Path):
    import docx

    d = docx.Document()
    d.add_paragraph("date 2020-01-02")
    d.add_paragraph("The bridge at Aske opened to traffic.")
    d.core_properties.created = formats.dt.datetime(2021, 3, 4)
    d.save(str(tmp_path / "bridge.docx"))
    doc = load_file(tmp_path / "bridge.docx")
    assert doc.date == "2020-01-02" and doc.text == "The bridge at Aske opened to traffic."


@pytest.mark.parametrize("name, data, title", [
    ("utf16.txt", "Quarterly report\n\nSales rose in May.".encode("utf-16"), "Quarterly report"),
    ("wrapped.txt", b"The committee met on Tuesday to discuss the budget and\nits effects.", "Wrapped"),
    ("sentence.txt", b"The ferry leaves at noon.\n\nBring a coat.", "Sentence"),
    ("heading.txt", b"Minutes of the board\nPresent: Ann, Bo.\n", "Minutes of the board"),
    ("plain.md", b"Release plan\n\nWe ship in May.", "Release plan"),
    ("h1-later.md", b"Intro line without a stop\n\n# Real title\n\nText.", "Real title"),
    ("2024-01-05-trip-notes.txt", b"- first item\n- second item", "Trip Notes"),
])
def test_titles_from_a_title_like_first_line(tmp_path: Path, name: str, data: bytes, title: str):
    (tmp_path / name).write_bytes(data)
    assert load_file(tmp_path / name).title == title


def test_rag_index_reads_every_format_and_each_is_answered_from(library: Path, settings_factory,
                                                                 assistant):
    settings = settings_factory("formats-cli", generator="extractive")
    out = cli("--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir), "index",
              "--quiet", str(library))
    assert out.returncode == 0, out.stderr
    assert f"{len(SAMPLES) + 1} added" in out.stdout, out.stdout  # and the seed article
    assert "skipped" not in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
    own = Assistant(settings)
    own.__dict__["embedder"] = assistant.embedder
    listed = {d.id: d for d in own.documents()}
    assert {s.name for s in SAMPLES} <= set(listed)
    assert listed["survey.docx"].author == "Alma Ruiz"
    for sample in SAMPLES:
        answer = own.ask(sample.question)
        cited = {answer.sources[int(n) - 1].doc_id for n in _markers(answer.text)}
        assert not answer.refused, (sample.name, answer.text)
        assert sample.expected.lower() in answer.text.lower(), (sample.name, answer.text)
        assert sample.name in cited, (sample.name, answer.text, cited)
    asked = cli("--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir), "--generator",
                "extractive", "ask", "--json", "What was the revenue of the North region in Q3?")
    reply = json.loads(asked.stdout)
    assert "4.2" in reply["answer"] and reply["sources"][0]["doc_id"] == "revenue.xlsx"


def _markers(text: str) -> list[str]:
    import re

    return re.findall(r"\[(\d+)\]", text)


def test_the_page_upload_reads_every_format(library: Path, settings_factory, assistant, tmp_path_factory):
    from gradio_client import Client, handle_file

    from tests.test_ui_client import running_page

    own = Assistant(settings_factory("formats-page", generator="extractive"))
    own.__dict__["embedder"] = assistant.embedder
    os.environ["GRADIO_TEMP_DIR"] = str(tmp_path_factory.mktemp("formats-gradio"))
    try:
        with running_page(own) as url:
            client = Client(url + "/", verbose=False)
            result = client.predict([handle_file(str(library / s.name)) for s in SAMPLES],
                                    api_name="/add_documents")
            assert sorted(result["added"]) == sorted(s.name for s in SAMPLES), result
            assert result["skipped"] == []
            for sample in SAMPLES:
                final = client.predict(sample.question, 4, [], api_name="/ask")
                cited = {s["doc_id"] for s in final["sources"] if s["cited"]}
                assert not final["refused"] and sample.name in cited, (sample.name, final["answer"])
                assert sample.expected.lower() in final["answer"].lower(), (sample.name, final["answer"])
    finally:
        os.environ.pop("GRADIO_TEMP_DIR", None)


@needs_ocr
def test_a_scanned_one_page_pdf_is_answered_from(fresh: Assistant, tmp_path: Path, caplog):
    formats.write_scan_pdf(tmp_path / "millpond-scan.pdf")
    fresh.documents()
    with caplog.at_level(logging.INFO, logger="rag.ingest.ocr"):
        report = fresh.add([tmp_path / "millpond-scan.pdf"])
    assert report.added == ["millpond-scan.pdf"], report.skipped
    # progress per page, and the page read once: the check before copying is not repeated
    assert caplog.text.count("millpond-scan.pdf: reading page 1 by OCR") == 1, caplog.text
    answer = fresh.ask("When was the mill pond at Ashby drained?")
    assert "1962" in answer.text and answer.sources[0].doc_id == "millpond-scan.pdf"


def test_without_tesseract_scans_get_the_clear_message(tmp_path: Path):
    """tesseract made unfindable (PATH without it): scans and images are skipped with what to
    install; the text page of a mixed PDF and every other file are still indexed."""
    lib = tmp_path / "library"
    lib.mkdir()
    for write, name in ((formats.write_scan_pdf, "millpond-scan.pdf"), (formats.write_png, "weir.png"),
                        (formats.write_mixed_pdf, "hornsea.pdf"), (formats.write_docx, "survey.docx")):
        write(lib / name)
    out = cli("--corpus", str(lib), "--index", str(tmp_path / "index"), "index", "--quiet",
              env={"PATH": str(tmp_path / "no-programs-here")})
    assert out.returncode == 0, out.stderr
    message = "no text layer: install tesseract-ocr to read scanned pages"
    lines = out.stderr.splitlines()
    for name in ("millpond-scan.pdf", "weir.png"):
        assert f"skipped {name}: {message}" in lines, out.stderr
    assert any("hornsea.pdf: 1 of 2 pages have no text layer" in line and message in line for line in lines)
    assert "2 added" in out.stdout
    listed = cli("--corpus", str(lib), "--index", str(tmp_path / "index"), "list", "--skipped")
    assert sorted(listed.stdout.splitlines()) == [f"millpond-scan.pdf\t{message}", f"weir.png\t{message}"]


# -- quiet re-scans ---------------------------------------------------------------------------
def test_an_unreadable_file_is_reported_once_per_change(fresh: Assistant, caplog):
    corpus = fresh.settings.corpus_dir
    fresh.documents()
    (corpus / "empty.md").write_text("")
    (corpus / "broken.docx").write_bytes(b"PK\x03\x04 not really")
    (corpus / "notes.xyz").write_text("an unknown type")
    with caplog.at_level(logging.WARNING, logger="rag"):
        first = fresh.refresh()
    assert sorted(s.path for s in first.skipped) == ["broken.docx", "empty.md", "notes.xyz"]
    assert caplog.text.count("skipped") == 3
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rag"):
        second = fresh.refresh()
    assert second.skipped == [] and "skipped" not in caplog.text
    assert sorted(s.path for s in second.skipped_before) == ["broken.docx", "empty.md", "notes.xyz"]
    assert "3 still skipped (rag list --skipped)" in second.summary()
    assert {s.path: s.reason for s in fresh.skipped()} == {
        "broken.docx": "a damaged or truncated archive (BadZipFile: File is not a zip file)",
        "empty.md": "the file is empty", "notes.xyz": "unsupported file type '.xyz'"}
    (corpus / "empty.md").write_text("   \n")  # changed, still unreadable: reported again, once
    third = fresh.refresh()
    assert [s.path for s in third.skipped] == ["empty.md"]
    assert fresh.refresh().skipped == []
    (corpus / "empty.md").write_text("Now the file has words.")  # readable now: indexed, forgotten
    (corpus / "broken.docx").unlink()
    fourth = fresh.refresh()
    assert fourth.added == ["empty.md"] and fourth.skipped == []
    assert [s.path for s in fresh.skipped()] == ["notes.xyz"]


def test_command_line_scans_quietly(tmp_path: Path):
    """`rag index` reports a bad file once; `rag ask` does not repeat it, nor print pypdf's
    warnings about a PDF with junk before its header (which is still read)."""
    from tests.test_ingest import pdf_bytes

    lib = tmp_path / "library"
    lib.mkdir()
    (lib / "keeper.pdf").write_bytes(b"junk junk\n" + pdf_bytes("The keeper of Port Elm retired in 1988.")
                                     + b"garbage")
    (lib / "empty.md").write_text("")
    formats.write_csv(lib / "stations.csv")
    base = ["--corpus", str(lib), "--index", str(tmp_path / "index"), "--generator", "extractive"]
    first = cli(*base, "index", "--quiet")
    assert first.returncode == 0 and "2 added" in first.stdout, first.stderr
    assert "skipped empty.md: the file is empty" in first.stderr
    for _ in range(2):
        asked = cli(*base, "ask", "When did the keeper of Port Elm retire?")
        assert "1988" in asked.stdout
        assert "skipped" not in asked.stderr and "pdf header" not in asked.stderr, asked.stderr
        assert "EOF marker" not in asked.stderr and "startxref" not in asked.stderr, asked.stderr
    listed = cli(*base, "list", "--skipped", "--json")
    assert json.loads(listed.stdout) == [{"path": "empty.md", "reason": "the file is empty"}]
