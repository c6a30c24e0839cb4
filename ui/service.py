"""What the page and its HTTP API do, without Gradio's layout: answering (with follow-up
rewriting), listing, adding and removing documents, and the JSON shapes the API returns."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rag.answer.conversation import QuestionRewriter, as_turns
from rag.assistant import QuestionError, safe_filename
from rag.collections import Collections
from rag.config import collection_name
from rag.schema import Answer
from rag.users import Access, ReadOnly

from . import render

log = logging.getLogger(__name__)

UPLOAD_HELP = (
    "Add documents, several at once: text and Markdown (any encoding), HTML, PDF (scanned pages "
    "too), Word (.docx), PowerPoint (.pptx), Excel (.xlsx), CSV and TSV, EPUB, OpenDocument "
    "(.odt), RTF, JSON and JSON Lines, e-mail (.eml), and images of text (.png, .jpg, .tiff). "
    "They are copied into the library and indexed. Files that cannot be read are listed with the "
    "reason; documents already indexed are kept."
)
"""The upload's help text. The upload takes any file rather than only these types: Gradio would
refuse a whole batch for one file of another type, where the library reports that file alone."""

MAX_K = 12
HISTORY_TURNS = 6
QUEUE_SIZE = 64
"""Questions that may wait for their turn (the page's Gradio queue, and /v1's); more get a 'busy'."""
FRIENDLY_ERROR = (
    "Sorry, something went wrong while answering. Please try again; the details are in the "
    "server log."
)


class Service:
    """What the page and the API do, without Gradio: easy to test and to reuse.

    Every call names a collection ('' or None: the server's own) and the logged-in user; a
    collection the user may not read is answered exactly like one that does not exist."""

    def __init__(self, assistant: Any, collections: Collections | None = None,
                 access: Access | None = None):
        self.assistant = assistant
        self.collections = collections or Collections(assistant)
        self.access = access or Access()
        self._rewriter: QuestionRewriter | None = None

    # -- collections ---------------------------------------------------------------------
    @property
    def home(self) -> str:
        return self.assistant.collection

    def assistant_for(self, collection: Any, user: str | None = None, write: bool = False) -> Any:
        """The assistant of a collection the user may read (and change, with `write`)."""
        return self.access.open(self.collections, collection, user, write)

    def collection_names(self, user: str | None = None) -> list[str]:
        return self.access.readable(user, self.collections.names())

    def first_collection(self, user: str | None = None) -> str | None:
        """The collection a new page starts on: the server's own if the user may read it."""
        names = self.collection_names(user)
        return self.home if self.home in names else (names[0] if names else None)

    def collections_info(self, user: str | None = None) -> list[dict[str, Any]]:
        return [self.collections.info(n).to_dict() for n in self.collection_names(user)]

    def create(self, collection: Any, user: str | None = None) -> str:
        """Create a collection (the user needs the right to change it); returns its name."""
        try:
            name = collection_name(collection)
        except ValueError as exc:
            raise QuestionError(str(exc)) from None
        if not self.access.can_write(user, name):
            raise ReadOnly(f"You may not create the collection {name!r}.")
        self.collections.create(name)
        return name

    @property
    def rewriter(self) -> QuestionRewriter:
        if self._rewriter is None:
            self._rewriter = QuestionRewriter(self.assistant.generator)
        return self._rewriter

    def clamp_k(self, k: Any) -> int:
        try:
            value = int(k)
        except (TypeError, ValueError):
            value = self.assistant.settings.top_k
        return max(1, min(MAX_K, value))

    def stream(self, question: str, k: Any, history: Any, collection: Any = None,
               user: str | None = None) -> Iterator[tuple[str, Any]]:
        """("rewrite", Rewrite), then ("draft", text so far)..., then ("answer", Answer).

        Turns of `history` marked with another collection are left out: a follow-up is never
        rewritten with what was said about another collection."""
        assistant = self.assistant_for(collection, user)
        if not isinstance(question, str) or not question.strip():
            raise QuestionError("Please type a question.")
        turns = as_turns(same_collection(history, assistant.collection))[-HISTORY_TURNS:]
        rewrite = self.rewriter.rewrite(question, turns)
        if rewrite.changed:
            log.info("follow-up %r searched as %r (%s)", question, rewrite.standalone,
                     rewrite.method)
        yield "rewrite", rewrite
        draft = ""
        for item in assistant.stream(rewrite.standalone, self.clamp_k(k)):
            if isinstance(item, Answer):
                yield "answer", item
            else:
                draft += item
                yield "draft", draft

    # -- documents ---------------------------------------------------------------------
    def documents(self, collection: Any = None, user: str | None = None) -> list[dict[str, Any]]:
        # no "path" key: gradio_client would take the dicts for files to download
        return [{"id": d.id, "title": d.title, "date": d.date, "chunks": d.chunks}
                for d in self.assistant_for(collection, user).documents()]

    def table(self, collection: Any = None, user: str | None = None) -> list[list[Any]]:
        return [[d["id"], d["title"], d["date"] or "", d["chunks"]]
                for d in self.documents(collection, user)]

    def document_text(self, doc_id: str, collection: Any = None, user: str | None = None) -> str:
        return self.assistant_for(collection, user).document_text(doc_id)

    def remove(self, doc_id: str, collection: Any = None, user: str | None = None) -> bool:
        return bool(self.assistant_for(collection, user, write=True).remove(doc_id))

    def add(self, paths: list[str], progress: Any = None, collection: Any = None,
            user: str | None = None):
        try:
            assistant = self.assistant_for(collection, user, write=True)
        except Exception:
            for path in paths:
                discard_upload(Path(path))
            raise
        report = assistant.add([Path(p) for p in paths], progress=progress)
        # report only on the files given, not on other unreadable files in the library
        given = {Path(p).name for p in paths} | {safe_filename(Path(p).name) for p in paths}
        report.skipped = [s for s in report.skipped if Path(s.path).name in given]
        for path in paths:  # the upload copies are not needed once in the library
            discard_upload(Path(path))
        return report


def api_answer(answer: Answer) -> dict[str, Any]:
    """An Answer as plain JSON for the API: text, flags, and the numbered sources."""
    cited = set(render.cited_numbers(answer))
    return {
        "answer": answer.text,
        "short": answer.short,
        "refused": answer.refused,
        "method": answer.method,
        "cited": sorted(cited),
        "searched": answer.searched or answer.question,
        "sentences": [s.to_dict() for s in answer.sentences],
        "sources": [
            {"n": n, "doc_id": p.doc_id, "title": p.title, "date": p.date, "text": p.text,
             "start": p.start, "end": p.end, "score": round(float(p.score), 4),
             "relevance": p.relevance,
             "highlight": list(p.highlight) if p.highlight else None,
             "highlights": [list(h) for h in p.highlights], "cited": n in cited}
            for n, p in enumerate(answer.sources, start=1)
        ],
    }


def same_collection(history: Any, collection: str) -> list[Any]:
    """The turns of `history` that belong to `collection`: a turn that says it was asked in
    another collection (a dict with "collection") is dropped; unmarked turns are kept."""
    if not isinstance(history, list | tuple):
        return []
    kept = []
    for turn in history:
        if isinstance(turn, dict) and turn.get("collection") not in (None, ""):
            try:
                if collection_name(str(turn["collection"])) != collection:
                    continue
            except ValueError:
                continue
        kept.append(turn)
    return kept


def count_questions(chat: list) -> int:
    return sum(1 for m in chat if isinstance(m, dict) and m.get("role") == "user")


def discard_upload(path: Path) -> None:
    from gradio.utils import get_upload_folder

    try:
        root = Path(get_upload_folder()).resolve()
        path = path.resolve()
        if root in path.parents:
            path.unlink(missing_ok=True)
            if path.parent != root and not any(path.parent.iterdir()):
                path.parent.rmdir()
    except OSError:
        log.debug("could not delete upload %s", path, exc_info=True)


def file_paths(files: Any) -> list[str]:
    if not files:
        return []
    if not isinstance(files, list | tuple):
        files = [files]
    paths = []
    for f in files:
        if isinstance(f, dict):
            f = f.get("path") or f.get("name")
        elif hasattr(f, "path"):
            f = f.path
        elif hasattr(f, "name") and not isinstance(f, str):
            f = f.name
        if f:
            paths.append(str(f))
    return paths
