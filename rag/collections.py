"""Collections: several libraries served by one process, answers that never cross between them.

A collection is a name. `default` is the library in `corpus_dir` with its index in `index_dir`
(what `rag` had before collections existed); any other name is a library of its own,
`collections_dir/NAME/library/`, indexed into `collections_dir/NAME/index/` (over Milvus: its
own pair of Milvus collections, `rag/store/milvus.py`). Each collection is its own `Assistant`,
so nothing a question searches or keeps (vectors, chunk texts, BM25 statistics, the Milvus row
cache) is shared between collections; only the models are (the embedder and the generator hold
no document state), loaded once by the home assistant.

`Collections` owns the name -> Assistant mapping of a process: collections are loaded when a
question first needs them, and past `max_loaded_collections` the least recently used one is
unloaded (its index let go; it loads again when asked). Rights (who may read or change which
collection) are in `rag/users.py`; this module only knows names.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import uuid
from collections import OrderedDict
from dataclasses import asdict, dataclass
from pathlib import Path

from .assistant import Assistant
from .config import DEFAULT_COLLECTION, Settings, collection_name
from .index import saved_counts

log = logging.getLogger(__name__)


class UnknownCollection(LookupError):
    """No collection of that name (or none the user may see: the message is the same)."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name

    def __str__(self) -> str:
        return f"no collection {self.name!r}"


@dataclass
class CollectionInfo:
    name: str
    documents: int
    chunks: int
    loaded: bool

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class Collections:
    """The collections of one process: the home collection (pinned: it owns the models) and
    the named ones, loaded on demand, least recently used unloaded past the limit."""

    def __init__(self, home: Assistant | None = None, settings: Settings | None = None,
                 max_loaded: int | None = None):
        """`settings` are those of the default collection, from which every other collection's
        are derived (default: the home assistant's); `home` is the assistant whose collection
        stays loaded (default: one for `settings.collection`)."""
        self.settings = settings or (home.settings if home is not None else Settings.from_env())
        self.home = home or Assistant(self.settings)
        self.max_loaded = max_loaded or self.settings.max_loaded_collections
        self._loaded: OrderedDict[str, Assistant] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def root(self) -> Path:
        return self.settings.collections_dir

    # -- names ----------------------------------------------------------------------------
    def names(self) -> list[str]:
        """Every collection: `default` first, then the named ones (folders of collections_dir)."""
        found: list[str] = []
        if self.root.is_dir():
            for entry in self.root.iterdir():
                if entry.is_dir() and not entry.name.startswith("."):
                    try:
                        if collection_name(entry.name) == entry.name:
                            found.append(entry.name)
                    except ValueError:
                        continue
        named = sorted(n for n in found if n != DEFAULT_COLLECTION)
        return [DEFAULT_COLLECTION, *named]

    def exists(self, name: str) -> bool:
        name = collection_name(name)
        return name == DEFAULT_COLLECTION or (self.root / name).is_dir()

    def loaded_names(self) -> list[str]:
        """The named collections held now, least recently used first."""
        with self._lock:
            return list(self._loaded)

    # -- assistants -----------------------------------------------------------------------
    def get(self, name: str | None = None, create: bool = False) -> Assistant:
        """The assistant of collection `name` (the home collection when None); an unknown name
        is created when `create`, else UnknownCollection."""
        name = collection_name(name) if name is not None else self.home.collection
        if name == self.home.collection:
            return self.home
        evicted: list[Assistant] = []
        with self._lock:
            assistant = self._loaded.get(name)
            if assistant is not None:
                self._loaded.move_to_end(name)
                return assistant
            if not create and not self.exists(name):
                raise UnknownCollection(name)
            assistant = Assistant(self.settings, collection=name, models=self.home)
            if name != DEFAULT_COLLECTION:
                assistant.settings.corpus_dir.mkdir(parents=True, exist_ok=True)
            self._loaded[name] = assistant
            while len(self._loaded) > self.max_loaded:
                old, gone = self._loaded.popitem(last=False)
                log.info("unloading collection %s (least recently used of %d)", old, self.max_loaded + 1)
                evicted.append(gone)
        for gone in evicted:  # outside the lock: waits for a search in progress on it to end
            gone.close()
        return assistant

    def create(self, name: str) -> Assistant:
        """Make an empty collection (its library folder); an existing one is left as it is."""
        return self.get(name, create=True)

    def delete(self, name: str) -> None:
        """Delete a named collection: its library, its index (its Milvus collections)."""
        name = collection_name(name)
        if name == DEFAULT_COLLECTION:
            raise ValueError("the default collection is the library in corpus_dir: remove its "
                             "documents instead (rag remove)")
        if name == self.home.collection:
            raise ValueError(f"collection {name!r} is the one this process works on")
        if not self.exists(name):
            raise UnknownCollection(name)
        with self._lock:
            assistant = self._loaded.pop(name, None)
        assistant = assistant or Assistant(self.settings, collection=name, models=self.home)
        if assistant.shared_store:
            index = assistant.indexer.open(assistant.settings.index_dir)
            index.store.drop()
            index.store.close()
        assistant.close()
        trash = self.root / f".deleting-{name}-{uuid.uuid4().hex[:8]}"
        os.rename(self.root / name, trash)  # gone from every listing at once
        shutil.rmtree(trash, ignore_errors=True)
        log.info("deleted collection %s", name)

    def info(self, name: str) -> CollectionInfo:
        """Documents and chunks indexed in a collection. A FAISS index not loaded is counted
        from its manifest (nothing loaded); a loaded one, or one on Milvus, is asked."""
        name = collection_name(name)
        with self._lock:
            assistant = self.home if name == self.home.collection else self._loaded.get(name)
        if assistant is None and not self.exists(name):
            raise UnknownCollection(name)
        if assistant is None or not assistant.loaded:
            settings = self.settings.for_collection(name)
            if not _shared(settings):
                documents, chunks = saved_counts(settings.index_dir) or (0, 0)
                return CollectionInfo(name, documents, chunks, assistant is not None and assistant.loaded)
            assistant = self.get(name)
        docs = assistant.documents()
        return CollectionInfo(name, len(docs), sum(d.chunks for d in docs), True)

    def close(self) -> None:
        """Unload every named collection (the home one too)."""
        with self._lock:
            held, self._loaded = list(self._loaded.values()), OrderedDict()
        for assistant in [*held, self.home]:
            assistant.close()


def _shared(settings: Settings) -> bool:
    from .store import store_class

    return store_class(settings.store).shared
