"""The corpus of the format benchmark (benchmarks/formats.py) and how a conversion is scored:
known source text (headings at three levels, paragraphs, a list, a table with a header row,
non-ASCII text, title/author/created properties), written into every format by the library that
makes it, in a small (one page) and a large (200 pages, 5,000 rows) size; word recall, headings,
tables and properties of a conversion measured against it.

Ported from the study that chose the libraries (docs/FORMATS.md), so its figures can be re-run.
"""

from __future__ import annotations

import collections
import csv
import datetime as dt
import json
import pathlib
import random
import re

TITLE = "Quarterly Report — Café Über"
AUTHOR = "Zoë Müller"
CREATED = dt.datetime(2024, 3, 15, 10, 30, 0, tzinfo=dt.UTC)
SUBJECT = "Revenue and staffing, Q1 2024"

TABLE = [
    ["Region", "Revenue", "Manager"],
    ["North", "4.2 M", "Émile Durand"],
    ["South", "3.1 M", "Jürgen Groß"],
    ["East", "2.7 M", "王伟"],
]

SMALL = [
    ("h1", TITLE),
    ("p", "This report covers the café in Zürich — revenue, staffing and a naïve forecast "
          "for the façade renovation. Prices rose 5 % in Düsseldorf."),
    ("h2", "Regional Revenue"),
    ("p", "Revenue per region for the first quarter, in millions of euros:"),
    ("table", TABLE),
    ("h2", "Action Items"),
    ("ul", ["Open a second café in Köln", "Hire a sommelier — urgently", "Translate the menu into 中文"]),
    ("h3", "Notes in Chinese 中文笔记"),
    ("p", "我们的咖啡馆在北京和上海开设了新店。 The Beijing store opened in March."),
]

_VOCAB = [
    "revenue", "forecast", "café", "über", "naïve", "façade", "résumé", "Zürich", "Straße",
    "budget", "margin", "staff", "quarter", "region", "north", "south", "east", "west", "growth",
    "market", "customer", "supplier", "invoice", "delivery", "contract", "meeting", "schedule",
    "report", "analysis", "中文", "北京", "上海", "coffee", "tea", "pastry", "déjà", "vu", "crème",
    "brûlée", "Ärger", "Öl", "Übung", "señor", "año",
]


def _sentence(rng: random.Random, n: int) -> str:
    words = [rng.choice(_VOCAB) for _ in range(n)]
    return " ".join(words).capitalize() + "."


def large(pages: int = 200, seed: int = 7) -> list[tuple]:
    """About `pages` pages of text (~450 words each), a table every 5th, a list every 7th."""
    rng = random.Random(seed)
    blocks: list[tuple] = [("h1", TITLE)]
    for p in range(pages):
        blocks.append(("h2", f"Section {p + 1} {rng.choice(_VOCAB)}"))
        for _ in range(4):
            blocks.append(("p", " ".join(_sentence(rng, rng.randint(12, 20)) for _ in range(6))))
        if p % 5 == 0:
            rows = [["Region", "Revenue", "Manager"]] + [
                [rng.choice(["North", "South", "East", "West"]), f"{rng.uniform(1, 9):.1f} M",
                 rng.choice(["Émile", "Jürgen", "王伟", "Zoë"])] for _ in range(6)]
            blocks.append(("table", rows))
        if p % 7 == 0:
            blocks.append(("h3", f"Actions {p + 1}"))
            blocks.append(("ul", [_sentence(rng, 6) for _ in range(4)]))
    return blocks


# ---- spreadsheet content -------------------------------------------------------------
SHEET1 = "Revenue"
SHEET1_HEADER = ["Region", "Quarter", "Revenue (M €)", "Manager", "Date"]
SHEET2 = "Staff"
SHEET2_HEADER = ["Name", "City", "Headcount"]


def sheet_rows(n: int, seed: int = 3) -> tuple[list[list], list[list]]:
    rng = random.Random(seed)
    regions = ["North", "South", "East", "West"]
    managers = ["Émile Durand", "Jürgen Groß", "王伟", "Zoë Müller"]
    r1 = [[regions[i % 4], f"Q{i % 4 + 1}", round(4.2 if i == 0 else rng.uniform(1, 9), 1),
           managers[i % 4], dt.date(2024, 1 + i % 12, 1 + i % 28)] for i in range(n)]
    r2 = [["Zoë Müller", "Zürich", 12], ["Jürgen Groß", "Köln", 7], ["王伟", "北京", 21]]
    return r1, r2


# ---- scoring helpers -----------------------------------------------------------------
WORD = re.compile(r"\w+", re.UNICODE)


def tokens(text: str) -> list[str]:
    return [t.lower() for t in WORD.findall(text)]


def block_text(blocks: list[tuple]) -> str:
    out = []
    for kind, val in blocks:
        if kind == "ul":
            out.extend(val)
        elif kind == "table":
            out.extend(" ".join(r) for r in val)
        else:
            out.append(val)
    return "\n".join(out)


def headings(blocks: list[tuple]) -> list[tuple[int, str]]:
    return [(int(k[1]), v) for k, v in blocks if k in ("h1", "h2", "h3")]


# ---------------------------------------------------------------- docx (python-docx)
def make_docx(blocks, path, page_breaks=False):
    import docx

    d = docx.Document()
    cp = d.core_properties
    cp.title, cp.author, cp.created, cp.subject = TITLE, AUTHOR, CREATED.replace(tzinfo=None), SUBJECT
    for kind, val in blocks:
        if kind in ("h1", "h2", "h3"):
            if page_breaks and kind == "h2":
                d.add_page_break()
            d.add_heading(val, level=int(kind[1]))
        elif kind == "p":
            d.add_paragraph(val)
        elif kind == "ul":
            for it in val:
                d.add_paragraph(it, style="List Bullet")
        elif kind == "table":
            t = d.add_table(rows=len(val), cols=len(val[0]))
            t.style = "Table Grid"
            for r, row in enumerate(val):
                for c, cell in enumerate(row):
                    t.cell(r, c).text = cell
    d.save(path)


# ---------------------------------------------------------------- pptx (python-pptx)
def make_pptx(blocks, path):
    from pptx import Presentation
    from pptx.util import Inches

    prs = Presentation()
    cp = prs.core_properties
    cp.title, cp.author, cp.created = TITLE, AUTHOR, CREATED.replace(tzinfo=None)
    slide = None
    body = None
    for kind, val in blocks:
        if kind in ("h1", "h2", "h3"):
            slide = prs.slides.add_slide(prs.slide_layouts[1])  # title and content
            slide.shapes.title.text = val
            body = slide.placeholders[1].text_frame
            body.text = ""
            first = True
        elif kind == "p":
            par = body.paragraphs[0] if first else body.add_paragraph()
            par.text, par.level, first = val, 0, False
        elif kind == "ul":
            for it in val:
                par = body.paragraphs[0] if first else body.add_paragraph()
                par.text, par.level, first = it, 1, False
        elif kind == "table":
            shape = slide.shapes.add_table(len(val), len(val[0]), Inches(0.5), Inches(4.5), Inches(9),
                                           Inches(2))
            for r, row in enumerate(val):
                for c, cell in enumerate(row):
                    shape.table.cell(r, c).text = cell
    if prs.slides:
        prs.slides[0].notes_slide.notes_text_frame.text = "Speaker notes: mention the café in Zürich."
    prs.save(path)


# ---------------------------------------------------------------- xlsx (openpyxl)
def make_xlsx(n, path):
    import openpyxl

    wb = openpyxl.Workbook()
    wb.properties.title, wb.properties.creator = TITLE, AUTHOR
    wb.properties.created = CREATED.replace(tzinfo=None)
    r1, r2 = sheet_rows(n)
    ws = wb.active
    ws.title = SHEET1
    ws.append(SHEET1_HEADER)
    for row in r1:
        ws.append(row)
    ws.append(["Total", None, f"=SUM(C2:C{n + 1})", None, None])  # formula: no cached value from openpyxl
    ws2 = wb.create_sheet(SHEET2)
    ws2.append(SHEET2_HEADER)
    for row in r2:
        ws2.append(row)
    wb.save(path)


# ---------------------------------------------------------------- csv / tsv
def make_csv(n, path, delim):
    r1, _ = sheet_rows(n)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter=delim)
        w.writerow(SHEET1_HEADER)
        for row in r1:
            w.writerow([x.isoformat() if isinstance(x, dt.date) else x for x in row])


# ---------------------------------------------------------------- html for epub/eml
def blocks_html(blocks):
    from html import escape as e

    out = []
    for kind, val in blocks:
        if kind in ("h1", "h2", "h3"):
            out.append(f"<{kind}>{e(val)}</{kind}>")
        elif kind == "p":
            out.append(f"<p>{e(val)}</p>")
        elif kind == "ul":
            out.append("<ul>" + "".join(f"<li>{e(i)}</li>" for i in val) + "</ul>")
        elif kind == "table":
            head = "".join(f"<th>{e(c)}</th>" for c in val[0])
            rows = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in val[1:])
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    return "\n".join(out)


def blocks_plain(blocks):
    out = []
    for kind, val in blocks:
        if kind == "ul":
            out.extend(f"* {i}" for i in val)
        elif kind == "table":
            out.extend("  ".join(r) for r in val)
        else:
            out.append(val)
        out.append("")
    return "\n".join(out)


# ---------------------------------------------------------------- epub (ebooklib)
def make_epub(blocks, path):
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("urn:uuid:12345678-aaaa-bbbb-cccc-1234567890ab")
    book.set_title(TITLE)
    book.set_language("en")
    book.add_author(AUTHOR)
    book.add_metadata("DC", "date", CREATED.date().isoformat())
    chapters, cur = [], []
    for b in blocks:  # a chapter per h1/h2
        if b[0] in ("h1", "h2") and cur:
            chapters.append(cur)
            cur = []
        cur.append(b)
    chapters.append(cur)
    items = []
    for i, ch in enumerate(chapters):
        it = epub.EpubHtml(title=ch[0][1], file_name=f"chap_{i:03d}.xhtml", lang="en")
        it.content = blocks_html(ch)
        book.add_item(it)
        items.append(it)
    book.toc = items
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *items]
    epub.write_epub(str(path), book)


# ---------------------------------------------------------------- odt (odfpy)
def make_odt(blocks, path):
    from odf import dc, meta, table, text
    from odf.opendocument import OpenDocumentText
    from odf.style import ParagraphProperties, Style, TextProperties

    doc = OpenDocumentText()
    doc.meta.addElement(dc.Title(text=TITLE))
    doc.meta.addElement(dc.Creator(text=AUTHOR))
    doc.meta.addElement(meta.InitialCreator(text=AUTHOR))
    doc.meta.addElement(meta.CreationDate(text=CREATED.replace(tzinfo=None).isoformat()))
    hstyles = {}
    for lvl in (1, 2, 3):
        s = Style(name=f"Heading {lvl}", family="paragraph", defaultoutlinelevel=str(lvl))
        s.addElement(TextProperties(fontsize=f"{20 - 3 * lvl}pt", fontweight="bold"))
        s.addElement(ParagraphProperties(margintop="0.2cm"))
        doc.styles.addElement(s)
        hstyles[lvl] = s
    for kind, val in blocks:
        if kind in ("h1", "h2", "h3"):
            lvl = int(kind[1])
            doc.text.addElement(text.H(outlinelevel=lvl, stylename=hstyles[lvl], text=val))
        elif kind == "p":
            doc.text.addElement(text.P(text=val))
        elif kind == "ul":
            lst = text.List()
            for i in val:
                li = text.ListItem()
                li.addElement(text.P(text=i))
                lst.addElement(li)
            doc.text.addElement(lst)
        elif kind == "table":
            t = table.Table(name=f"Table{id(val) % 10000}")
            t.addElement(table.TableColumn(numbercolumnsrepeated=len(val[0])))
            for r, row in enumerate(val):
                tr = table.TableRow()
                for cell in row:
                    tc = table.TableCell(valuetype="string")
                    tc.addElement(text.P(text=cell))
                    tr.addElement(tc)
                if r == 0:
                    hr = table.TableHeaderRows()
                    hr.addElement(tr)
                    t.addElement(hr)
                else:
                    t.addElement(tr)
            doc.text.addElement(t)
    doc.save(str(path))


# ---------------------------------------------------------------- rtf (hand-written writer)
def _rtf_escape(s: str) -> str:
    out = []
    for ch in s:
        o = ord(ch)
        if ch in "\\{}":
            out.append("\\" + ch)
        elif o < 128:
            out.append(ch)
        else:  # RTF \uN? with signed 16-bit N; astral chars would need surrogates (none here)
            out.append(f"\\u{o if o < 32768 else o - 65536}?")
    return "".join(out)


def make_rtf(blocks, path):
    y, m, d = CREATED.year, CREATED.month, CREATED.day
    parts = [r"{\rtf1\ansi\ansicpg1252\deff0",
             r"{\fonttbl{\f0\fswiss Helvetica;}}",
             r"{\stylesheet{\s0 Normal;}{\s1\outlinelevel0\b\fs36 heading 1;}"
             r"{\s2\outlinelevel1\b\fs30 heading 2;}{\s3\outlinelevel2\b\fs26 heading 3;}}",
             r"{\info{\title " + _rtf_escape(TITLE) + r"}{\author " + _rtf_escape(AUTHOR) + "}"
             + rf"{{\creatim\yr{y}\mo{m}\dy{d}\hr10\min30}}}}"]
    for kind, val in blocks:
        if kind in ("h1", "h2", "h3"):
            lvl = int(kind[1])
            style = rf"\pard\s{lvl}\outlinelevel{lvl - 1}\b\fs{40 - 4 * lvl} "
            parts.append(style + _rtf_escape(val) + r"\b0\fs24\par")
        elif kind == "p":
            parts.append(r"\pard\s0 " + _rtf_escape(val) + r"\par")
        elif kind == "ul":
            for it in val:
                parts.append(r"\pard\s0\fi-360\li720 \bullet\tab " + _rtf_escape(it) + r"\par")
        elif kind == "table":
            for row in val:
                cells = "".join(rf"\cellx{2500 * (i + 1)}" for i in range(len(row)))
                body = "".join(r"\pard\intbl " + _rtf_escape(c) + r"\cell" for c in row)
                parts.append(r"\trowd" + cells + body + r"\row")
            parts.append(r"\pard")
    parts.append("}")
    pathlib.Path(path).write_text("\n".join(parts), encoding="ascii")


# ---------------------------------------------------------------- json / jsonl
def make_json(blocks, path):
    secs, cur = [], None
    for kind, val in blocks:
        if kind in ("h1", "h2", "h3"):
            cur = {"heading": val, "level": int(kind[1]), "paragraphs": [], "items": [], "rows": []}
            secs.append(cur)
        elif kind == "p":
            cur["paragraphs"].append(val)
        elif kind == "ul":
            cur["items"].extend(val)
        elif kind == "table":
            cur["rows"].extend(dict(zip(val[0], r)) for r in val[1:])
    doc = {"title": TITLE, "author": AUTHOR, "created": CREATED.isoformat(), "version": 3,
           "published": True, "sections": secs}
    pathlib.Path(path).write_text(json.dumps(doc, ensure_ascii=False, indent=2), encoding="utf-8")


def make_jsonl(n, path):
    r1, _ = sheet_rows(n)
    with open(path, "w", encoding="utf-8") as f:
        for row in r1:
            rec = dict(zip(SHEET1_HEADER, [x.isoformat() if isinstance(x, dt.date) else x for x in row]))
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")


# ---------------------------------------------------------------- eml (email.message)
def make_eml(blocks, path):
    from email.message import EmailMessage
    from email.utils import format_datetime

    msg = EmailMessage()
    msg["Subject"] = TITLE
    msg["From"] = f"{AUTHOR} <zoe@example.org>"
    msg["To"] = "Team Zürich <team@example.org>"
    msg["Date"] = format_datetime(CREATED)
    msg["Message-ID"] = "<q1-report@example.org>"
    msg.set_content(blocks_plain(blocks))
    msg.add_alternative(f"<html><body>{blocks_html(blocks)}</body></html>", subtype="html")
    msg.add_attachment("Attachment text: menu prices for the Köln café.", subtype="plain",
                       filename="menü.txt")
    pathlib.Path(path).write_bytes(bytes(msg))



DOC_FORMATS = ("docx", "pptx", "epub", "odt", "rtf", "json", "eml")
ROW_FORMATS = ("xlsx", "csv", "tsv", "jsonl")


def source_blocks(fmt: str, size: str):
    if size == "small":
        return SMALL
    return large(60) if fmt == "pptx" else large(200)


def source_text(fmt: str, size: str) -> str:
    if fmt in DOC_FORMATS:
        return block_text(source_blocks(fmt, size))
    n = 8 if size == "small" else 5000
    r1, r2 = sheet_rows(n)
    lines = [" ".join(SHEET1_HEADER)] + [" ".join(str(x) for x in r) for r in r1]
    if fmt == "xlsx":
        lines += [SHEET1, SHEET2, " ".join(SHEET2_HEADER)] + [" ".join(str(x) for x in r) for r in r2]
    return "\n".join(lines)


def recall(src: str, out: str) -> tuple[float, float]:
    s, o = collections.Counter(tokens(src)), collections.Counter(tokens(out))
    hit = sum(min(v, o[k]) for k, v in s.items())
    return hit / max(1, sum(s.values())), 1 - hit / max(1, sum(o.values()))


_HEAD = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def _norm(s: str) -> str:
    return " ".join(tokens(s))


def heading_score(fmt, size, out: str) -> str:
    if fmt not in DOC_FORMATS or fmt == "json":
        return "n/a"
    want = headings(source_blocks(fmt, size))
    found = {}
    for line in out.splitlines():
        m = _HEAD.match(line.strip().replace("**", ""))
        if m:
            found.setdefault(_norm(m.group(2)), set()).add(len(m.group(1)))
    kept = sum(1 for _, t in want if _norm(t) in found)
    level = sum(1 for lvl, t in want if lvl in found.get(_norm(t), ()))
    extra = sum(1 for line in out.splitlines() if _HEAD.match(line.strip())) - kept
    if fmt == "pptx":  # slide titles are the headings; level is not meaningful
        return f"{kept}/{len(want)}" + (f" (+{extra} extra)" if extra > 0 else "")
    return f"{kept}/{len(want)} lvl {level}/{len(want)}" + (f" (+{extra} extra)" if extra > 0 else "")


def table_score(fmt, size, out: str) -> str:
    lines = [ln.strip() for ln in out.splitlines()]
    if fmt in ROW_FORMATS:
        hdr = [h for h in SHEET1_HEADER]
        kv = sum(1 for ln in lines if "Region: " in ln and "Revenue (M €): " in ln and "Manager: " in ln)
        n = 8 if size == "small" else 5000
        for i, ln in enumerate(lines[:-1]):
            cells = [c.strip() for c in ln.strip("|").split("|")]
            if cells[:len(hdr)] == hdr and re.match(r"^\|?\s*:?-{3,}", lines[i + 1]):
                return "md table w/ header"
        if kv >= n:
            return f"key: value per row ({kv}/{n})"
        if kv:
            return f"key: value partial ({kv}/{n})"
        return "header once, rows bare" if any(all(h in ln for h in hdr) for ln in lines) else "flat"
    want = [b for b in source_blocks(fmt, size) if b[0] == "table"]
    if fmt == "json":
        return "n/a"
    hdr_ok = md_nohdr = row_kept = 0
    for i, ln in enumerate(lines[:-1]):
        cells = [c.strip() for c in ln.strip("|").split("|")]
        if cells == ["Region", "Revenue", "Manager"]:
            if re.match(r"^\|?\s*:?-{3,}", lines[i + 1]):
                hdr_ok += 1
            elif i > 0 and re.match(r"^\|?\s*:?-{3,}", lines[i - 1]):
                md_nohdr += 1
            else:
                row_kept += 1
        elif "Region" in ln and "Revenue" in ln and "Manager" in ln:
            row_kept += 1
    n = len(want)
    if hdr_ok >= n:
        return f"md w/ header {hdr_ok}/{n}"
    if md_nohdr:
        return f"md, header as body row {md_nohdr}/{n}"
    if row_kept:
        return f"rows kept (not md) {row_kept}/{n}"
    return "flat (cells split)"


def props_score(meta: dict) -> str:
    got = []
    t = _norm(meta.get("title", ""))
    got.append("T" if t == _norm(TITLE) else ("t?" if t else "-"))
    got.append("A" if "zoë müller" in meta.get("author", "").lower() else "-")
    got.append("D" if str(meta.get("created", "")).startswith("2024-03-15") else "-")
    return "".join(got)


def chars_score(src: str, out: str) -> str:
    want = [c for c in ("é", "É", "ü", "ß", "—", "中文", "王伟") if c in src]
    return "".join(c if c in out else "✗" for c in want)


def score(fmt, size, text, meta) -> dict:
    r, noise = recall(source_text(fmt, size), text)
    return {"recall": round(r, 4), "noise": round(noise, 3), "headings": heading_score(fmt, size, text),
            "tables": table_score(fmt, size, text), "props": props_score(meta),
            "chars": chars_score(source_text(fmt, size), text),
            "escapes": len(re.findall(r"\\[.\-_*#]", text))}


# ---------------------------------------------------------------- the corpus
def write_corpus(folder: pathlib.Path) -> dict[str, pathlib.Path]:
    """Every (format, size) file under `folder`; returns "fmt/size" -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    big = large(200)
    jobs = {
        "docx": (lambda p: make_docx(SMALL, p), lambda p: make_docx(big, p, page_breaks=True)),
        "pptx": (lambda p: make_pptx(SMALL, p), lambda p: make_pptx(large(60), p)),
        "xlsx": (lambda p: make_xlsx(8, p), lambda p: make_xlsx(5000, p)),
        "csv": (lambda p: make_csv(8, p, ","), lambda p: make_csv(5000, p, ",")),
        "tsv": (lambda p: make_csv(8, p, "\t"), lambda p: make_csv(5000, p, "\t")),
        "epub": (lambda p: make_epub(SMALL, p), lambda p: make_epub(big, p)),
        "odt": (lambda p: make_odt(SMALL, p), lambda p: make_odt(big, p)),
        "rtf": (lambda p: make_rtf(SMALL, p), lambda p: make_rtf(big, p)),
        "json": (lambda p: make_json(SMALL, p), lambda p: make_json(big, p)),
        "jsonl": (lambda p: make_jsonl(8, p), lambda p: make_jsonl(5000, p)),
        "eml": (lambda p: make_eml(SMALL, p), lambda p: make_eml(big, p)),
    }
    out = {}
    for fmt, (small_writer, large_writer) in jobs.items():
        for size, writer in (("small", small_writer), ("large", large_writer)):
            path = folder / f"{size}.{fmt}"
            if not path.exists():
                writer(path)
            out[f"{fmt}/{size}"] = path
    return out
