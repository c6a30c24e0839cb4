"""HTML through BeautifulSoup: the visible text, scripts and styles dropped, the <title> kept."""

from __future__ import annotations

import re
from pathlib import Path

from .base import LOADERS, MAX_FILE_BYTES, LoadError, split_header


@LOADERS.register(".html", ".htm")
def load_html(path: Path, data: bytes, limit: int = MAX_FILE_BYTES) -> tuple[str, dict[str, str]]:
    from bs4 import BeautifulSoup

    if not data.strip():
        raise LoadError("the file is empty")
    if b"\x00" in data[:8192]:
        raise LoadError("binary file (contains NUL bytes), not HTML")
    try:
        soup = BeautifulSoup(data, "html.parser")
        for tag in soup(["script", "style", "noscript", "template", "svg", "iframe"]):
            tag.decompose()
        title = soup.title.get_text(" ", strip=True) if soup.title else ""
        if soup.head:
            soup.head.decompose()
        raw = soup.get_text("\n")
    except RecursionError as exc:
        raise LoadError("the HTML is nested too deeply to read") from exc
    lines = [" ".join(line.split()) for line in raw.splitlines()]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    text, meta = split_header(text)
    if title and "title" not in meta:
        meta["title"] = title
    return text, meta


def html_to_markdown(html: str | bytes) -> str:
    """HTML (an e-mail body, an e-book chapter) as Markdown through markdownify: headings,
    lists and tables kept; scripts, styles, images and link targets dropped. RecursionError
    on absurdly nested HTML is the caller's to report."""
    from bs4 import BeautifulSoup
    from markdownify import MarkdownConverter

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "svg", "iframe", "head"]):
        tag.decompose()
    converter = MarkdownConverter(heading_style="ATX", strip=["a", "img"], escape_asterisks=False,
                                  escape_underscores=False, bullets="-")
    text = converter.convert_soup(soup.body or soup)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
