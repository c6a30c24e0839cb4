"""Where chunks and vectors live: the vector store interface and its registry (base.py), the
FAISS and Milvus backends, the on-disk chunk table and the BM25 keyword index."""

from .base import STORES, VectorStore, store_class, store_kinds

__all__ = ["STORES", "VectorStore", "store_class", "store_kinds"]
