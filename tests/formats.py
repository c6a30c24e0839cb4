"""Documents in every supported format, written by the libraries that make them (python-docx,
python-pptx, openpyxl, EbookLib, odfpy, fpdf2, Pillow, the standard library), each holding one
fact that a question can be answered from, and the hostile variants of the zip-based ones."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path


@dataclass(frozen=True)
class Sample:
    name: str
    write: Callable[[Path], None]
    question: str
    expected: str
    """A word the answer must hold."""
    ocr: bool = False


# -- office formats -----------------------------------------------------------------------------
def write_docx(path: Path) -> None:
    import docx

    d = docx.Document()
    d.add_paragraph("Harbour Survey", style="Title")
    d.add_heading("Lighthouses", level=1)
    d.add_paragraph("The lighthouse of Port Verity was painted teal in 1987 by the keeper Alma Ruiz.")
    d.add_heading("Keepers", level=2)
    d.add_paragraph("Keepers served in shifts of two weeks.", style="List Bullet")
    table = d.add_table(rows=3, cols=2)
    for row, values in zip(table.rows, [("Keeper", "Years"), ("Alma Ruiz", "1980-1995"),
                                          ("Tomas Eld", "1995-2004")]):
        for cell, value in zip(row.cells, values):
            cell.text = value
    d.core_properties.title = "Harbour Survey 1987"
    d.core_properties.author = "Alma Ruiz"
    d.core_properties.created = dt.datetime(2021, 3, 4, 9, 30)
    d.save(str(path))


def write_pptx(path: Path) -> None:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[0])
    slide.shapes.title.text = "Island Transport Review"
    slide.placeholders[1].text = "Ferries and buses in 2023"
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Ferry timetable"
    body = slide.placeholders[1].text_frame
    body.text = "The night ferry to Skerry Holm leaves at 23:40 from pier four."
    body.add_paragraph().text = "Tickets are sold on board."
    rows = slide.shapes.add_table(2, 2, Inches(1), Inches(4), Inches(6), Inches(1)).table
    for r, values in enumerate([("Route", "Crossing"), ("Skerry Holm", "55 minutes")]):
        for c, value in enumerate(values):
            rows.cell(r, c).text = value
    slide.notes_slide.notes_text_frame.text = "Mention the winter timetable."
    deck.core_properties.title = "Island Transport Review"
    deck.core_properties.author = "Per Holm"
    deck.core_properties.created = dt.datetime(2023, 9, 1)
    deck.save(str(path))


def write_xlsx(path: Path) -> None:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Revenue"
    sheet.append(["Region", "Quarter", "Revenue (M €)", "Manager"])
    sheet.append(["North", "Q3", 4.2, "Ingrid Solberg"])
    sheet.append(["South", "Q3", 3.1, "Marco Vitale"])
    staff = book.create_sheet("Staff")
    staff.append(["Name", "Office"])
    staff.append(["Ingrid Solberg", "Tromsø"])
    book.properties.title = "Regional revenue"
    book.properties.creator = "Finance team"
    book.properties.created = dt.datetime(2022, 11, 30)
    book.save(str(path))


def write_csv(path: Path) -> None:
    path.write_text("Station,Opened,Platforms\nKelvin Halt,1911,3\nMarsh Lane,1928,2\n", encoding="utf-8")


def write_tsv(path: Path) -> None:
    path.write_text("Orchard\tVariety\tHarvest\nLindgård\tAquilon apples\tlate September\n"
                    "Hollow Farm\tConference pears\tearly October\n", encoding="utf-8")


def write_epub(path: Path) -> None:
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("glass-mill-0001")
    book.set_title("Stories of the Fjord")
    book.set_language("en")
    book.add_author("Sigrid Vang")
    book.add_metadata("DC", "date", "2019-05-17")
    chapters = []
    for n, (title, text) in enumerate([
        ("The Glass Mill", "The glass mill at Brekka burned down in 1893 and was never rebuilt."),
        ("The Harbour", "Fishing boats wintered in the harbour until the ice broke in April."),
    ], start=1):
        chapter = epub.EpubHtml(title=title, file_name=f"chap_{n}.xhtml", lang="en")
        chapter.content = f"<html><body><h1>{title}</h1><p>{text}</p></body></html>"
        book.add_item(chapter)
        chapters.append(chapter)
    book.toc = chapters
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *chapters]
    epub.write_epub(str(path), book)


def write_odt(path: Path) -> None:
    from odf import dc, meta
    from odf.opendocument import OpenDocumentText
    from odf.text import H, P

    doc = OpenDocumentText()
    doc.text.addElement(H(outlinelevel=1, text="Bee census"))
    doc.text.addElement(P(text="The apiary at Lindholm counted 41 hives in the summer of 2019."))
    doc.text.addElement(H(outlinelevel=2, text="Method"))
    doc.text.addElement(P(text="Hives were counted at dawn."))
    doc.meta.addElement(dc.Title(text="Bee census 2019"))
    doc.meta.addElement(dc.Creator(text="Ola Nordmann"))
    doc.meta.addElement(meta.CreationDate(text="2019-08-20T10:00:00"))
    doc.save(str(path))


def write_rtf(path: Path) -> None:
    path.write_bytes(
        b"{\\rtf1\\ansi\\ansicpg1252\\deff0{\\fonttbl{\\f0 Times;}}"
        b"{\\info{\\title Tram history}{\\author Karin Ek}{\\creatim\\yr2018\\mo2\\dy9}}"
        b"\\f0\\fs24 Tram history\\par\\par "
        b"The tram depot on Oskar Street closed in 1962; the caf\\'e9 next to it, Caf\\u233? "
        b"Linden, stayed open.\\par}")


def write_json(path: Path) -> None:
    path.write_text(json.dumps({
        "title": "Observatory log", "author": "Edvin Stjerne", "date": "2020-06-01",
        "observations": [{"object": "Comet Halley", "seen_from": "Mount Tarn observatory",
                          "year": 1986, "clouds": False}],
    }, ensure_ascii=False, indent=1), encoding="utf-8")


def write_jsonl(path: Path) -> None:
    records = [{"recipe": "Rye bread", "baker": "Oskar Lind", "oven_minutes": 55},
               {"recipe": "Cardamom buns", "baker": "Liv Aune", "oven_minutes": 12}]
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def write_eml(path: Path) -> None:
    message = EmailMessage()
    message["From"] = "Nina Berg <nina@example.org>"
    message["To"] = "caretakers@example.org"
    message["Subject"] = "Boiler inspection in block C"
    message["Date"] = "Tue, 02 May 2023 08:15:00 +0200"
    message.set_content("The boiler in block C failed its inspection on 3 May; a new one is ordered.")
    message.add_alternative("<html><body><h2>Boiler inspection</h2><p>The boiler in block C failed its "
                            "inspection on 3 May; a new one is ordered.</p></body></html>", subtype="html")
    message.add_attachment("Inspector: Arvid Dahl\nNext visit: June\n", filename="inspector.txt")
    path.write_bytes(bytes(message))


def write_pdf(path: Path) -> None:
    from tests.test_ingest import pdf_bytes

    path.write_bytes(pdf_bytes("The salt warehouse at Vik was converted into a library in 2005."))


# -- scans --------------------------------------------------------------------------------------
SCAN_TEXT = ["The weir at Millbrook", "was rebuilt in 1954", "after the great flood."]


def page_image(lines: list[str] = SCAN_TEXT, size: tuple[int, int] = (1654, 1000)):
    """A page of text as a scanner would give it: black text on white, about 200 dpi."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=56)
    for n, line in enumerate(lines):
        draw.text((120, 120 + n * 78), line, fill=0, font=font)
    return image


def write_png(path: Path) -> None:
    page_image().save(path)


def write_jpg(path: Path) -> None:
    page_image(["The ropewalk at Selby", "was 300 metres long."]).convert("RGB").save(path, quality=85)


def write_tiff(path: Path) -> None:
    first = page_image(["The signal box at Grange", "was staffed until 1979."])
    second = page_image(["The levers of the signal box", "went to a museum in Harrogate."])
    first.save(path, save_all=True, append_images=[second], compression="tiff_lzw")


def scan_pdf(image, text_page: str | None = None) -> bytes:
    """A PDF whose page is only a picture of text (a scan), after an optional page of text."""
    from fpdf import FPDF

    pdf = FPDF(unit="pt", format="A4")
    if text_page:
        pdf.add_page()
        pdf.set_font("Helvetica", size=12)
        pdf.multi_cell(0, 16, text_page)
    pdf.add_page()
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    pdf.image(buffer, x=0, y=0, w=pdf.w)
    return bytes(pdf.output())


def write_scan_pdf(path: Path) -> None:
    lines = ["The mill pond at Ashby", "was drained in 1962", "to build a school."]
    path.write_bytes(scan_pdf(page_image(lines)))


def write_mixed_pdf(path: Path) -> None:
    path.write_bytes(scan_pdf(page_image(["The pier at Hornsea", "was lengthened in 1921."]),
                              text_page="The lifeboat station at Hornsea opened in 1852."))


SAMPLES = [
    Sample("survey.docx", write_docx, "What colour was the lighthouse of Port Verity painted?", "teal"),
    Sample("transport.pptx", write_pptx, "When does the night ferry to Skerry Holm leave?", "23:40"),
    Sample("revenue.xlsx", write_xlsx, "What was the revenue of the North region in Q3?", "4.2"),
    Sample("stations.csv", write_csv, "When did Kelvin Halt station open?", "1911"),
    Sample("orchards.tsv", write_tsv, "When is the harvest of Aquilon apples at Lindgård?", "September"),
    Sample("fjord.epub", write_epub, "When did the glass mill at Brekka burn down?", "1893"),
    Sample("bees.odt", write_odt, "How many hives did the apiary at Lindholm count?", "41"),
    Sample("trams.rtf", write_rtf, "When did the tram depot on Oskar Street close?", "1962"),
    Sample("observatory.json", write_json, "From where was Comet Halley seen?", "Tarn"),
    Sample("bakery.jsonl", write_jsonl, "How many oven minutes does the rye bread need?", "55"),
    Sample("boiler.eml", write_eml, "When did the boiler in block C fail its inspection?", "May"),
    Sample("warehouse.pdf", write_pdf, "What was the salt warehouse at Vik converted into?", "library"),
    Sample("weir.png", write_png, "When was the weir at Millbrook rebuilt?", "1954", ocr=True),
    Sample("ropewalk.jpg", write_jpg, "How long was the ropewalk at Selby?", "300", ocr=True),
    Sample("signalbox.tiff", write_tiff, "Where did the levers of the signal box go?", "Harrogate",
           ocr=True),
    Sample("millpond-scan.pdf", write_scan_pdf, "When was the mill pond at Ashby drained?", "1962", ocr=True),
    Sample("hornsea.pdf", write_mixed_pdf, "When was the pier at Hornsea lengthened?", "1921", ocr=True),
]


def write_all(folder: Path, ocr: bool = True) -> list[Sample]:
    folder.mkdir(parents=True, exist_ok=True)
    chosen = [s for s in SAMPLES if ocr or not s.ocr]
    for sample in chosen:
        sample.write(folder / sample.name)
    return chosen


# -- hostile variants ---------------------------------------------------------------------------
def rezip(source: bytes, replace: dict[str, bytes], *, stored: set[str] = frozenset()) -> bytes:
    """The zip `source` with some entries' contents replaced (deflated, unless in `stored`)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(source)) as zin, zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            data = replace.get(info.filename, zin.read(info.filename))
            method = zipfile.ZIP_STORED if info.filename in stored else zipfile.ZIP_DEFLATED
            zout.writestr(info.filename, data, compress_type=method)
    return out.getvalue()


def sample_bytes(write: Callable[[Path], None], suffix: str) -> bytes:
    """The bytes a sample writer makes (in a temporary folder)."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"sample{suffix}"
        write(path)
        return path.read_bytes()


def docx_with_body(body: bytes) -> bytes:
    """A real python-docx file whose word/document.xml is `body`."""
    return rezip(sample_bytes(write_docx, ".docx"), {"word/document.xml": body})


W = b'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def docx_paragraphs(paragraphs: list[bytes]) -> bytes:
    runs = b"".join(b"<w:p><w:r><w:t>" + p + b"</w:t></w:r></w:p>" for p in paragraphs)
    return docx_with_body(b"<?xml version='1.0'?><w:document " + W + b"><w:body>" + runs +
                          b"</w:body></w:document>")


def docx_bomb(size: int = 120_000_000) -> bytes:
    """document.xml of `size` bytes of one repeated paragraph: a few hundred KB zipped."""
    para = b"lol " * 250
    return docx_paragraphs([para] * (size // (len(para) + 30)))


def docx_deep(depth: int) -> bytes:
    body = (b"<?xml version='1.0'?><w:document " + W + b"><w:body>" + b"<w:p>" * depth
            + b"</w:p>" * depth + b"</w:body></w:document>")
    return docx_with_body(body)


def _laughs(name: bytes, text: bytes, levels: int) -> bytes:
    return b'<!ENTITY %s0 "%s">' % (name, text) + b"".join(
        b'<!ENTITY %s%d "%s">' % (name, i, (b"&%s%d;" % (name, i - 1)) * 10) for i in range(1, levels + 1))


def docx_billion_laughs() -> bytes:
    body = (b"<?xml version='1.0'?><!DOCTYPE w:document [" + _laughs(b"lol", b"lol", 9) + b"]><w:document "
            + W + b"><w:body><w:p><w:r><w:t>&lol9;</w:t></w:r></w:p></w:body></w:document>")
    return docx_with_body(body)


def docx_external_entity(target: Path) -> bytes:
    body = (b"<?xml version='1.0'?><!DOCTYPE w:document [<!ENTITY xxe SYSTEM \"file://"
            + str(target).encode() + b"\">]><w:document " + W + b"><w:body><w:p><w:r><w:t>The harbour "
            b"master keeps the tide tables &xxe; in the office.</w:t></w:r></w:p></w:body></w:document>")
    return docx_with_body(body)


def overlapping_zip() -> bytes:
    """Two central-directory entries pointing at one compressed kernel (a non-recursive bomb)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", b"<Types/>")
        z.writestr("word/document.xml", b"<w:document " + W + b"/>")
    data = bytearray(out.getvalue())
    cd = data.rfind(b"PK\x01\x02")  # the second entry's local header offset -> the first's
    data[cd + 42:cd + 46] = (0).to_bytes(4, "little")
    return bytes(data)


def xlsx_bomb(rows: int = 2_000_000) -> bytes:
    row = b'<row><c t="inlineStr"><is><t>bomb</t></is></c></row>'
    sheet = (b'<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/'
             b'2006/main"><sheetData>' + row * rows + b"</sheetData></worksheet>")
    return rezip(sample_bytes(write_xlsx, ".xlsx"), {"xl/worksheets/sheet1.xml": sheet})


def odt_bomb(size: int = 120_000_000) -> bytes:
    source = sample_bytes(write_odt, ".odt")
    with zipfile.ZipFile(io.BytesIO(source)) as z:
        content = z.read("content.xml")
    para = b"<text:p>" + b"lol " * 250 + b"</text:p>"
    content = content.replace(b"</office:text>", para * (size // len(para)) + b"</office:text>")
    return rezip(source, {"content.xml": content}, stored={"mimetype"})


def epub_billion_laughs_opf() -> bytes:
    source = sample_bytes(write_epub, ".epub")
    with zipfile.ZipFile(io.BytesIO(source)) as z:
        opf_name = next(n for n in z.namelist() if n.endswith(".opf"))
        opf = z.read(opf_name)
    opf = opf.replace(b"?>", b"?><!DOCTYPE package [" + _laughs(b"a", b"aaaaaaaaaa", 8) + b"]>", 1)
    opf = opf.replace(b"Stories of the Fjord", b"&a8;")
    return rezip(source, {opf_name: opf}, stored={"mimetype"})


def png_bomb() -> bytes:
    """A PNG declaring 40,000 x 40,000 pixels (1.6 billion): a few KB on disk."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    data = zlib.compress((b"\x00" + b"\xff" * 5000) * 200, 9)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 40000, 40000, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", data) + chunk(b"IEND", b""))


def blank_png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("L", (800, 600), 255).save(out, format="PNG")
    return out.getvalue()


def png_bytes() -> bytes:
    return sample_bytes(write_png, ".png")


# -- converters that misbehave (for the worker's limits) ------------------------------------------
def spin_loader(path: Path, data: bytes, limit: int):
    """A converter caught in a loop."""
    while True:
        pass


def hog_loader(path: Path, data: bytes, limit: int):
    """A converter that wants all the memory there is."""
    blocks = []
    while True:
        blocks.append(bytes(256 << 20))  # calloc: address space, not resident memory


def crash_loader(path: Path, data: bytes, limit: int):
    """A converter whose native code crashes."""
    import os
    import signal

    os.kill(os.getpid(), signal.SIGSEGV)
