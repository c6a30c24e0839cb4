"""Embeddings: the `Embedder` facade (embedder.py) over a registry of backends (base.py):
OpenVINO (openvino.py, the default where it runs) and sentence-transformers (torch.py)."""

from .base import ENCODERS, Encoder, Unsupported, resolve_model
from .embedder import BACKENDS, Embedder, set_threads

__all__ = ["BACKENDS", "ENCODERS", "Embedder", "Encoder", "Unsupported", "resolve_model", "set_threads"]
