"""Reading the document formats: text fidelity and speed of each loader, what the conversion
worker costs, the zip check, OCR per page, and the install weight of the format libraries.

    python benchmarks/formats.py                           # every format, small and large
    python benchmarks/formats.py --runs 3 --write          # and update docs/FORMATS.md
    python benchmarks/formats.py --markitdown              # also markitdown, where it is installed
    python benchmarks/formats.py --sizes small --ocr-pages 1   # a quick check that it runs

The corpus (benchmarks/formatkit.py) is written by the libraries themselves into a work folder
(`--work`, default <cache>/bench-formats) and reused. Per file: word recall against the known
source text, headings kept (and at the right level), tables, properties (T title, A author,
D created date), then the CPU and wall time of the loader in this process (median of --runs
after one warm-up) and the wall time through the worker process (warm). The worker's start is
measured on its own. Timings on a shared machine are noisy: the lead re-runs them on a quiet one.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import formatkit as K  # noqa: E402

from rag.config import default_cache_dir  # noqa: E402
from rag.ingest import worker  # noqa: E402
from rag.ingest.archive import check_zip, expansion_limit  # noqa: E402
from rag.ingest.base import LOADERS, MAX_FILE_BYTES  # noqa: E402
from rag.ingest.library import read_file, to_document  # noqa: E402

DOC = ROOT / "docs" / "FORMATS.md"
LIBRARIES = ["python-docx", "python-pptx", "XlsxWriter", "lxml", "openpyxl", "et-xmlfile", "EbookLib",
             "six", "markdownify", "odfpy", "striprtf", "pytesseract", "pypdfium2"]
ZIPPED = ("docx", "pptx", "xlsx", "epub", "odt")


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


def convert(path: Path) -> tuple[str, dict[str, str]]:
    data, stat = read_file(path)
    doc = to_document(path, path.name, data, stat)
    return doc.text, {"title": doc.title, "author": doc.author or "", "created": doc.date or ""}


def timed(fn: Any, runs: int) -> tuple[list[float], list[float]]:
    """(wall seconds, CPU seconds of this process and its children) of each run."""
    walls, cpus = [], []
    for _ in range(runs):
        c0 = _cpu()
        t0 = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(_cpu() - c0)
    return walls, cpus


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def markitdown_convert() -> Any:
    try:
        from markitdown import MarkItDown, StreamInfo
    except ImportError:
        return None
    md = MarkItDown(enable_plugins=False)

    def run(path: Path) -> tuple[str, dict[str, str]]:
        with open(path, "rb") as fh:  # a stream, never a str (a str that looks like a URL is fetched)
            result = md.convert_stream(fh, stream_info=StreamInfo(extension=path.suffix, filename=path.name))
        return result.markdown, {"title": result.title or ""}

    return run


def measure_formats(files: dict[str, Path], runs: int, with_markitdown: bool) -> list[str]:
    rows = ["| file | converter | recall | headings | tables | props | CPU ms | wall ms | "
            "worker wall ms | worker cost ms |", "|---|---|---|---|---|---|---|---|---|---|"]
    others = {"markitdown": markitdown_convert()} if with_markitdown else {}
    for key, path in files.items():
        fmt, size = key.split("/")
        worker.ISOLATE = False
        text, meta = convert(path)  # warm-up: imports, the library's first parse
        walls, cpus = timed(lambda p=path: convert(p), runs)
        isolated = getattr(LOADERS.get(path.suffix), "isolated", False)
        worker_cell = cost_cell = "in process"
        if isolated:
            worker.ISOLATE = True
            convert(path)
            worker_walls, _ = timed(lambda p=path: convert(p), runs)
            worker_cell = f"{median_ms(worker_walls):,.0f}"
            cost_cell = f"{median_ms(worker_walls) - median_ms(walls):,.0f}"
        s = K.score(fmt, size, text, meta)
        rows.append(f"| {size}.{fmt} ({path.stat().st_size:,} B) | rag | {s['recall']:.3f} | "
                    f"{s['headings']} | {s['tables']} | {s['props']} | {median_ms(cpus):,.0f} | "
                    f"{median_ms(walls):,.0f} | {worker_cell} | {cost_cell} |")
        for name, run in others.items():
            if run is None:
                rows.append(f"| {size}.{fmt} | {name} | not installed | | | | | | | |")
                continue
            try:
                text, meta = run(path)
                walls, cpus = timed(lambda p=path, r=run: r(p), runs)
                s = K.score(fmt, size, text, meta)
                rows.append(f"| {size}.{fmt} | {name} | {s['recall']:.3f} | {s['headings']} | "
                            f"{s['tables']} | {s['props']} | {median_ms(cpus):,.0f} | "
                            f"{median_ms(walls):,.0f} | | |")
            except Exception as exc:
                rows.append(f"| {size}.{fmt} | {name} | fails: {type(exc).__name__} | | | | | | | |")
        print(rows[-1], file=sys.stderr)
    worker.ISOLATE = True
    return rows


def measure_worker_start(path: Path, runs: int) -> str:
    """The first file after the worker was stopped, against the same file with the worker up."""
    worker.ISOLATE = True
    colds, warms = [], []
    for _ in range(runs):
        worker._WORKER.close()
        t0 = time.perf_counter()
        convert(path)
        colds.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        convert(path)
        warms.append(time.perf_counter() - t0)
    return (f"worker start (process, imports, first parse of {path.name}): "
            f"{median_ms(colds) - median_ms(warms):,.0f} ms (first file {median_ms(colds):,.0f} ms, "
            f"the next {median_ms(warms):,.0f} ms)")


def measure_zip_check(files: dict[str, Path], runs: int) -> str:
    parts = []
    for key, path in files.items():
        if key.split("/")[0] in ZIPPED and key.endswith("/large"):
            data = path.read_bytes()
            walls, _ = timed(lambda d=data: check_zip(d, expansion_limit(MAX_FILE_BYTES)), runs)
            parts.append(f"{path.name} {median_ms(walls):.2f} ms")
    return "zip check (central directory only): " + ", ".join(parts)


def scan_pdf(pages: int) -> bytes:
    """An A4 page at 200 dpi with the small document's text as an image, `pages` times."""
    import textwrap

    from fpdf import FPDF
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("L", (1654, 2339), 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=27)  # about 10 pt at 200 dpi
    y = 140
    for line in K.blocks_plain(K.SMALL).splitlines():
        for wrapped in textwrap.wrap(line, 90) or [""]:
            draw.text((140, y), wrapped, font=font, fill=0)
            y += 40
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    pdf = FPDF(unit="pt", format="A4")
    for _ in range(pages):
        pdf.add_page()
        pdf.image(buffer, x=0, y=0, w=pdf.w, h=pdf.h)
    return bytes(pdf.output())


def measure_ocr(work: Path, pages: int) -> str:
    from rag.ingest import ocr

    if not ocr.available():
        return "OCR: tesseract-ocr is not installed (make run installs it)"
    path = work / f"scan{pages}.pdf"
    path.write_bytes(scan_pdf(pages))
    worker.ISOLATE = False  # in this process: tesseract's CPU is then our children's
    walls, cpus = timed(lambda: convert(path), 1)
    text, _ = convert(path)
    recall = K.recall(K.block_text(K.SMALL), text)[0]  # each page holds the same text
    worker.ISOLATE = True
    return (f"OCR ({ocr.languages()}, {ocr.DPI} dpi, OMP_THREAD_LIMIT=1), {pages} scanned A4 pages: "
            f"{walls[0] / pages:.2f} s wall and {cpus[0] / pages:.2f} s CPU per page; word recall "
            f"{recall:.3f}")


def install_weight() -> str:
    from importlib import metadata

    parts, total = [], 0
    for name in LIBRARIES:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            parts.append(f"{name} (not installed)")
            continue
        size = 0
        for file in dist.files or []:
            with contextlib.suppress(OSError):
                size += os.path.getsize(dist.locate_file(file))
        total += size
        parts.append(f"{name} {size / 1e6:.1f}")
    return (f"installed size of the format libraries: {total / 1e6:.0f} MB in all ("
            + ", ".join(parts) + " MB)")


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        model = next(line.split(":", 1)[1].strip() for line in out.splitlines()
                     if line.startswith("Model name"))
    except (OSError, StopIteration, subprocess.SubprocessError):
        model = "unknown CPU"
    return f"{model}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", default="small,large")
    parser.add_argument("--formats", default=",".join(["docx", "pptx", "xlsx", "csv", "tsv", "epub", "odt",
                                                      "rtf", "json", "jsonl", "eml"]))
    parser.add_argument("--ocr-pages", type=int, default=3)
    parser.add_argument("--markitdown", action="store_true", help="also measure markitdown where installed")
    parser.add_argument("--work", type=Path, default=default_cache_dir() / "bench-formats")
    parser.add_argument("--write", action="store_true", help=f"update the section of {DOC.relative_to(ROOT)}")
    args = parser.parse_args()
    sizes, chosen = args.sizes.split(","), args.formats.split(",")
    machine = cpu_model()
    files = {k: p for k, p in K.write_corpus(args.work).items()
             if k.split("/")[0] in chosen and k.split("/")[1] in sizes}
    lines = measure_formats(files, args.runs, args.markitdown)
    notes = [measure_worker_start(files.get("docx/small") or next(iter(files.values())), args.runs),
             measure_zip_check(files, args.runs) if any(k.endswith("/large") for k in files) else "",
             measure_ocr(args.work, args.ocr_pages) if args.ocr_pages else "", install_weight()]
    command = "python benchmarks/formats.py " + " ".join(sys.argv[1:])
    body = "\n".join([*lines, "", *[f"- {n}" for n in notes if n], "",
                      f"Measured {time.strftime('%Y-%m-%d')} on {machine}, with `{command.strip()}`."])
    print(body)
    if args.write:
        from rag.evaluate import write_section

        write_section(DOC, "formats", body, prefix="bench", header="# Document formats\n")
        print(f"updated {DOC.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
