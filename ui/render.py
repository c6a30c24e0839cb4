"""HTML and Markdown for the page: answers with clickable citations, source cards with the
supporting sentence highlighted, the document table. Pure functions, no Gradio."""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

from rag.schema import Answer, IndexReport, Passage

NOT_IN_DOCUMENTS = (
    "**The documents don't hold the answer to this question.** "
    "Try rephrasing it, or add a document that covers it (Documents tab)."
)
NO_DOCUMENTS = (
    "**No documents are indexed yet.** Add some in the Documents tab, then ask again."
)
SOURCES_EMPTY = (
    '<div class="rag-sources-empty">Sources of the latest answer appear here: each cited '
    "passage with its document, date, file and score, the supporting sentence highlighted. "
    "Click a citation such as [1] in the answer to jump to its passage.</div>"
)
_CITATION = re.compile(r"\[(\d+)\]")
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#|~])")


def escape_markdown(text: str) -> str:
    """Text shown as-is in the chat (no Markdown or HTML from documents or the model)."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def answer_markdown(answer: Answer) -> str:
    """The final answer for the chat: citation markers become links to the source cards."""
    if answer.refused and not answer.sources:
        return NO_DOCUMENTS
    if answer.refused:
        return NOT_IN_DOCUMENTS + dropped_markdown(answer)
    count = len(answer.sources)
    parts: list[str] = [f"**{escape_markdown(answer.short)}**\n\n"] if answer.short else []
    pos = 0
    for match in _CITATION.finditer(answer.text):
        parts.append(escape_markdown(answer.text[pos:match.start()]))
        n = int(match.group(1))
        if 1 <= n <= count:
            parts.append(f"[\\[{n}\\]](#source-{n})")
        else:
            parts.append(escape_markdown(match.group(0)))
        pos = match.end()
    parts.append(escape_markdown(answer.text[pos:]))
    text = "".join(parts)
    if answer.method in ("extractive", "generated", "excerpts"):  # these quote their sentence
        text += "\n\n<sub>Quoted from the best matching passage.</sub>"
    return text + dropped_markdown(answer)


def dropped_markdown(answer: Answer) -> str:
    """The sentences the model wrote that no passage holds: removed from the answer, shown
    collapsed and marked, so a reader sees what was left out and why."""
    dropped = [s.text for s in answer.sentences if not s.supported]
    if not dropped:
        return ""
    items = "".join(f"<li>{html.escape(s)}</li>" for s in dropped)
    label = "sentence" if len(dropped) == 1 else "sentences"
    return (f'\n\n<details class="rag-dropped"><summary>{len(dropped)} {label} not found in the '
            f"sources (removed)</summary><ul>{items}</ul></details>")


def draft_markdown(draft: str) -> str:
    return escape_markdown(draft) + " ▌"


def cited_numbers(answer: Answer) -> list[int]:
    count = len(answer.sources)
    found = {int(n) for n in _CITATION.findall(answer.text)}
    return sorted(n for n in found if 1 <= n <= count)


def _passage_html(passage: Passage) -> str:
    text = passage.text
    if passage.highlights:  # full answers: every span that supports a sentence
        parts: list[str] = []
        pos = 0
        for start, end in _merged(passage.highlights, len(text)):
            parts.append(html.escape(text[pos:start]))
            parts.append(f'<mark class="rag-support">{html.escape(text[start:end])}</mark>')
            pos = end
        return "".join(parts) + html.escape(text[pos:])
    if passage.highlight:
        start, end = passage.highlight
        if 0 <= start < end <= len(text):
            return (
                html.escape(text[:start])
                + f'<mark class="rag-support">{html.escape(text[start:end])}</mark>'
                + html.escape(text[end:])
            )
    return html.escape(text)


def _merged(spans: Sequence[tuple[int, int]], limit: int) -> list[tuple[int, int]]:
    """Overlapping spans (a two-sentence window and one of its sentences) as one."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted((s, e) for s, e in spans if 0 <= s < e <= limit):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def source_card(n: int, passage: Passage, cited: bool) -> str:
    date = html.escape(passage.date) if passage.date else "no date"
    state = "open" if cited else ""
    badge = '<span class="rag-badge">cited</span>' if cited else ""
    return (
        f'<details id="source-{n}" class="rag-source{" rag-cited" if cited else ""}" '
        f'data-doc="{html.escape(passage.doc_id, quote=True)}" {state}>'
        f'<summary><span class="rag-num">[{n}]</span> '
        f'<span class="rag-title">{html.escape(passage.title or passage.doc_id)}</span>{badge}'
        f'<div class="rag-meta">{date} · <code>{html.escape(passage.doc_id)}</code> · '
        f"{_score(passage)}</div></summary>"
        f'<div class="rag-passage">{_passage_html(passage)}</div></details>'
    )


def sources_html(answer: Answer | None, turn: int = 0) -> str:
    """The source cards of an answer; `data-turn` tells tests (and scripts) which answer."""
    if answer is None:
        return SOURCES_EMPTY
    opening = f'<div class="rag-sources" data-turn="{turn}">'
    if not answer.sources:
        return opening + '<div class="rag-sources-empty">No passages were found.</div></div>'
    cited = set(cited_numbers(answer))
    cards = [source_card(n, p, n in cited) for n, p in enumerate(answer.sources, start=1)]
    head = (
        '<div class="rag-sources-note">None of these passages answers the question; '
        "they are the closest ones found.</div>"
        if answer.refused else ""
    )
    return opening + head + "".join(cards) + "</div>"


def source_documents(answer: Answer | None) -> list[str]:
    """Document ids of an answer's sources, cited first, each once."""
    if answer is None:
        return []
    cited = set(cited_numbers(answer))
    order = sorted(range(len(answer.sources)), key=lambda i: (i + 1 not in cited, i))
    seen: list[str] = []
    for i in order:
        doc_id = answer.sources[i].doc_id
        if doc_id not in seen:
            seen.append(doc_id)
    return seen


def report_markdown(report: IndexReport, rejected_only: Sequence[Any] = ()) -> str:
    lines: list[str] = []
    if report.added:
        lines.append("**Added:** " + ", ".join(f"`{d}`" for d in report.added))
    if report.updated:
        lines.append("**Updated:** " + ", ".join(f"`{d}`" for d in report.updated))
    if report.skipped:
        lines.append("**Not added:**")
        lines += [f"- `{s.path}`: {escape_markdown(s.reason)}" for s in report.skipped]
    if not lines:
        lines.append("Nothing new: these files were already indexed.")
    lines.append(f"\n<sub>{escape_markdown(report.summary())}</sub>")
    return "\n".join(lines)


CSS = """
.rag-source { border: 1px solid var(--border-color-primary); border-radius: 8px;
  padding: 6px 10px; margin: 0 0 8px 0; background: var(--background-fill-secondary); }
.rag-source summary { cursor: pointer; }
.rag-cited { border-color: var(--color-accent); }
.rag-num { font-weight: 700; color: var(--color-accent); }
.rag-title { font-weight: 600; }
.rag-badge { margin-left: 6px; font-size: 0.75em; padding: 1px 6px; border-radius: 9px;
  background: var(--color-accent-soft); }
.rag-meta { font-size: 0.85em; opacity: 0.8; margin: 2px 0 0 1.8em; }
.rag-passage { margin-top: 6px; line-height: 1.45; white-space: pre-wrap; font-size: 0.95em; }
mark.rag-support { background: #fde68a; color: #1f2937; padding: 0 2px; border-radius: 3px; }
.rag-flash { animation: rag-flash 1.2s ease-out; }
@keyframes rag-flash { from { box-shadow: 0 0 0 4px var(--color-accent); } to { box-shadow: none; } }
.rag-sources-empty, .rag-sources-note { opacity: 0.75; font-size: 0.9em; margin-bottom: 8px; }
#rag-sources { max-height: 640px; overflow-y: auto; }
"""

# Clicking a citation link [n] in the chat opens and scrolls to source card n (client side).
HEAD = """
<script>
document.addEventListener("click", function (event) {
  const link = event.target.closest && event.target.closest('a[href^="#source-"]');
  if (!link) return;
  event.preventDefault();
  event.stopPropagation();
  const card = document.getElementById(link.getAttribute("href").slice(1));
  if (!card) return;
  card.open = true;
  card.scrollIntoView({behavior: "smooth", block: "nearest"});
  card.classList.remove("rag-flash");
  void card.offsetWidth;
  card.classList.add("rag-flash");
}, true);
</script>
"""


def _score(passage: Passage) -> str:
    """The readable relevance (the closest sentence's cosine) where the reader set it; the
    retrieval score, which only ranks, otherwise."""
    if passage.relevance is not None:
        return f"relevance {passage.relevance:.2f}"
    return f"score {passage.score:.2f}"
