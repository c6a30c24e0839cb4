"""Loaders: each supported type, the date header, and every kind of bad file."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.ingest import LoadError, discover, load_file, load_many
from tests.conftest import SEEDS


def pdf_bytes(text: str, password: str | None = None) -> bytes:
    import io

    from fpdf import FPDF
    from pypdf import PdfReader, PdfWriter

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    pdf.multi_cell(0, 8, text)
    data = bytes(pdf.output())
    if password is None:
        return data
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(password)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_seed_article_date_header_becomes_metadata():
    path = next(SEEDS.glob("*.txt"))
    doc = load_file(path, path.name)
    assert doc.date == "2022-02-04"
    assert doc.text.startswith("President Xi pointed out")
    assert "date 2022" not in doc.text
    assert doc.text.endswith("justice.\"")
    assert len(doc.content_hash) == 64


def test_markdown_front_matter_and_heading(tmp_path: Path):
    p = tmp_path / "notes.md"
    p.write_text("---\ntitle: Field notes\ndate: 2023-05-01\n---\n# Ignored heading\n\nBody text here.")
    doc = load_file(p)
    assert (doc.title, doc.date) == ("Field notes", "2023-05-01")
    assert doc.text.startswith("# Ignored heading")
    q = tmp_path / "plain.md"
    q.write_text("# Release plan\n\nWe ship in May.")
    assert load_file(q).title == "Release plan"


def test_html_drops_scripts_and_styles(tmp_path: Path):
    p = tmp_path / "page.html"
    p.write_text(
        "<html><head><title>Harbor report</title><style>body{color:red}</style>"
        "<script>var secret = 'do not index';</script></head>"
        "<body><h1>Harbor</h1><p>The harbor opened in 1907.</p>"
        "<script>alert('x')</script><noscript>enable js</noscript></body></html>"
    )
    doc = load_file(p)
    assert doc.title == "Harbor report"
    assert "The harbor opened in 1907." in doc.text
    for noise in ("secret", "color:red", "alert", "enable js"):
        assert noise not in doc.text


def test_pdf_text_is_extracted(tmp_path: Path):
    p = tmp_path / "memo.pdf"
    p.write_bytes(pdf_bytes("The lighthouse keeper retired in 1988 after forty years."))
    doc = load_file(p)
    assert "lighthouse keeper retired in 1988" in doc.text


@pytest.mark.parametrize(
    "name, data, reason",
    [
        ("empty.txt", b"", "empty"),
        ("blank.md", b"  \n\t \n", "empty"),
        ("binary.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "binary"),
        ("undecidable.txt", bytes(range(128, 256)) * 8, "encoding that cannot be told"),
        ("broken.pdf", b"%PDF-1.4\n this is not really a pdf", "PDF"),
        ("archive.zip", b"PK\x03\x04 anything", "unsupported file type"),
        ("noext", b"some text", "unsupported file type"),
        ("empty.pdf", b"", "empty"),
        ("empty.html", b"", "empty"),
        ("nul.html", b"<html>\x00\x00\x00</html>", "binary"),
    ],
)
def test_bad_files_raise_clear_errors(tmp_path: Path, name: str, data: bytes, reason: str):
    p = tmp_path / name
    p.write_bytes(data)
    with pytest.raises(LoadError, match=reason):
        load_file(p)


def test_encrypted_pdf_is_reported(tmp_path: Path):
    p = tmp_path / "secret.pdf"
    p.write_bytes(pdf_bytes("classified", password="hunter2"))
    with pytest.raises(LoadError, match="encrypted"):
        load_file(p)


def test_utf16_with_bom_is_text(tmp_path: Path):
    p = tmp_path / "wide.txt"
    p.write_bytes("Grüße aus Köln".encode("utf-16"))
    assert load_file(p).text == "Grüße aus Köln"


def test_batch_goes_on_after_bad_files(tmp_path: Path):
    (tmp_path / "good.txt").write_text("The river froze in January.")
    (tmp_path / "bad.txt").write_bytes(b"ok \x00\xfa\xfb\xfc not text")
    (tmp_path / "empty.md").write_text("")
    (tmp_path / "image.bmp").write_bytes(b"BM")
    (tmp_path / ".hidden.txt").write_text("editor junk")
    paths, skipped = discover(tmp_path)
    assert [p.name for p in paths] == ["bad.txt", "empty.md", "good.txt"]
    assert [(s.path, "unsupported" in s.reason) for s in skipped] == [("image.bmp", True)]
    docs, bad = load_many(tmp_path, paths)
    assert [d.id for d in docs] == ["good.txt"]
    assert sorted(s.path for s in bad) == ["bad.txt", "empty.md"]
    assert all(s.reason for s in bad)
