"""Zip-based documents (.docx, .pptx, .xlsx, .epub, .odt) are checked before any library opens
them, and library failures become one-line reasons.

The check reads only the zip's central directory: nothing is decompressed or extracted, and no
name inside the archive is ever used as a path. It is enough because every library used here
reads the package through Python's `zipfile`, which stops each entry at the size the central
directory declares (and then fails its CRC), and because the library is handed the very bytes
that were checked (`io.BytesIO`), never the path again. Measured (docs/FORMATS.md): an 836 KB
.docx that unpacks to 242 MB kept python-docx busy past 120 s at 1.5 GB; it is refused here in
under a millisecond."""

from __future__ import annotations

import contextlib
import io
import zipfile
from collections.abc import Iterator

from .base import LoadError
from .blocks import described

MAX_ENTRIES = 10_000
MAX_RATIO = 100
"""Uncompressed / compressed size allowed for an entry over RATIO_FLOOR: real documents measured
at most 32:1 (styles XML); the bombs and the 100,000-deep XML of the tests 365:1 and more."""
RATIO_FLOOR = 1 << 20
"""Entries smaller than this may compress as well as they like (a styles.xml at 30:1)."""
EXPANSION_FLOOR = 16 << 20


def expansion_limit(limit: int) -> int:
    """How far a package of a document may unpack in all: four times the text limit
    (RAG_MAX_DOCUMENT_MB), and at least 16 MB (the XML around the text, the styles)."""
    return 4 * limit + EXPANSION_FLOOR


MAGIC = (
    (b"%PDF-", "a PDF", ".pdf"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image", ".png"),
    (b"\xff\xd8\xff", "a JPEG image", ".jpg"),
    (b"II*\x00", "a TIFF image", ".tiff"),
    (b"MM\x00*", "a TIFF image", ".tiff"),
    (b"{\\rtf", "an RTF document", ".rtf"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "a password-protected or old-format (.doc, .xls, .ppt) "
     "Office file", ""),
)
PACKAGES = (
    ("word/document.xml", "Word document (.docx)", ".docx"),
    ("ppt/presentation.xml", "PowerPoint deck (.pptx)", ".pptx"),
    ("xl/workbook.xml", "Excel workbook (.xlsx)", ".xlsx"),
    ("META-INF/container.xml", "EPUB e-book (.epub)", ".epub"),
    ("content.xml", "OpenDocument text (.odt)", ".odt"),
)
"""The entry that marks each zip-based format, to name the format a misnamed file really is."""


def sniff(data: bytes) -> tuple[str, str] | None:
    """(what the bytes are, the suffix they call for) for a few formats people mix up."""
    for magic, what, suffix in MAGIC:
        if data.startswith(magic):
            return what, suffix
    return None


def not_this_kind(data: bytes, kind: str) -> LoadError | None:
    """The error for a file that is plainly another format (a .docx that is really a PDF)."""
    found = sniff(data)
    if found is None:
        return None
    what, suffix = found
    advice = f": rename it to {suffix}" if suffix else ": remove its password or save it in the new format"
    return LoadError(f"this file is {what}, not {a(kind)}{advice}")


def a(kind: str) -> str:
    """`Word document (.docx)` -> `a Word document (.docx)`; `EPUB e-book` -> `an EPUB e-book`."""
    return ("an " if kind[:1].upper() in "AEIOU" else "a ") + kind


def check_zip(data: bytes, max_total: int, max_entries: int = MAX_ENTRIES,
              max_ratio: float = MAX_RATIO) -> int:
    """Raise LoadError if the archive could expand beyond the limits; return the declared total."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise LoadError(f"a damaged or truncated archive ({described(exc)})") from exc
    max_entry = max_total // 2
    with zf:
        infos = zf.infolist()
        if len(infos) > max_entries:
            raise LoadError(f"{len(infos):,} entries in the archive (the limit is {max_entries:,})")
        total = 0
        seen: set[str] = set()
        spans: list[tuple[int, int]] = []
        for info in infos:
            name = info.filename[:80]
            if info.filename in seen:
                raise LoadError(f"the archive holds the entry {name!r} twice")
            seen.add(info.filename)
            if info.flag_bits & 0x1:
                raise LoadError(f"the entry {name!r} is encrypted")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise LoadError(f"the entry {name!r} uses an unusual compression method "
                                f"({info.compress_type})")
            if info.file_size > max_entry:
                raise LoadError(f"the entry {name!r} unpacks to {info.file_size:,} bytes "
                                f"(the limit is {max_entry:,}): a zip bomb?")
            total += info.file_size
            if total > max_total:
                raise LoadError(f"the archive unpacks to more than {max_total:,} bytes: a zip bomb?")
            if info.file_size > RATIO_FLOOR and info.file_size > max_ratio * max(1, info.compress_size):
                raise LoadError(f"the entry {name!r} is compressed "
                                f"{info.file_size / max(1, info.compress_size):,.0f}:1: a zip bomb?")
            header = 30 + len(info.orig_filename.encode("utf-8", "replace"))
            spans.append((info.header_offset, info.header_offset + header + info.compress_size))
        # entries sharing one compressed kernel (a non-recursive zip bomb): Python's zipfile
        # does not check this itself
        spans.sort()
        for (_, end), (start, _) in zip(spans, spans[1:]):
            if start < end:
                raise LoadError("the archive's entries overlap: a zip bomb?")
        return total


def package(data: bytes, kind: str, limit: int) -> io.BytesIO:
    """The checked bytes of a zip-based document, ready for its library."""
    if not data.strip():
        raise LoadError("the file is empty")
    if not data.startswith(b"PK"):
        raise not_this_kind(data, kind) or LoadError(f"not {a(kind)}: it is not a zip archive")
    check_zip(data, expansion_limit(limit))
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = set(zf.namelist())
    marks = [(entry, what, suffix) for entry, what, suffix in PACKAGES if entry in names]
    if marks and not any(what == kind for _, what, _ in marks):
        _, what, suffix = marks[0]
        raise LoadError(f"this file is {a(what)}, not {a(kind)}: rename it to {suffix}")
    return io.BytesIO(data)


@contextlib.contextmanager
def reading(kind: str) -> Iterator[None]:
    """Turn what a converter library raises on a broken or hostile file into a LoadError.

    Libraries raise many kinds of exception on input they were not written for (TypeError,
    KeyError, AttributeError ...); every one of them means the same to the user: this file
    cannot be read, and here is the library's own word on why."""
    try:
        yield
    except LoadError:
        raise
    except zipfile.BadZipFile as exc:
        raise LoadError(f"{a(kind)} with a damaged archive ({described(exc)})") from exc
    except KeyError as exc:
        raise LoadError(f"not a complete {kind}: a part is missing ({described(exc)})") from exc
    except RecursionError as exc:
        raise LoadError(f"{a(kind)} nested too deeply to read") from exc
    except MemoryError as exc:
        raise LoadError(f"{a(kind)} too large to read in memory") from exc
    except Exception as exc:
        name, message = type(exc).__name__, str(exc)
        if "depth" in message.lower():
            raise LoadError(f"the XML inside the {kind} is nested too deeply ({described(exc)})") from exc
        if name in ("EntitiesForbidden", "DTDForbidden", "ExternalReferenceForbidden") or \
                "amplification" in message:
            raise LoadError(f"the XML inside the {kind} declares entities (refused: an XML bomb or an "
                            f"external-entity attack?) ({described(exc)})") from exc
        if name in ("XMLSyntaxError", "ParseError", "ExpatError", "SAXParseException"):
            raise LoadError(f"the XML inside the {kind} is broken ({described(exc)})") from exc
        raise LoadError(f"not a readable {kind} ({described(exc)})") from exc
