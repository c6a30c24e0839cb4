"""Ingestion: files to `Document`s (one loader per format, registered by suffix in base.py),
documents to `Chunk`s (chunk.py), and what makes indexing resumable (resume.py) and shardable
between workers (shard.py)."""

from .base import LOADERS, MAX_FILE_BYTES, SUPPORTED_SUFFIXES, LoadError, split_header
from .library import discover, doc_id_for, file_hash, load_file, load_many

__all__ = ["LOADERS", "MAX_FILE_BYTES", "SUPPORTED_SUFFIXES", "LoadError", "discover", "doc_id_for",
           "file_hash", "load_file", "load_many", "split_header"]
