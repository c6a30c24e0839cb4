"""Generators: the base interface and its registry (base.py), one module per backend family.
`make_generator(settings)` builds the configured one."""

from .base import (
    GENERATORS,
    Copy,
    Generator,
    GeneratorError,
    Messages,
    make_generator,
    smollm2_gguf,
)
from .concurrency import answers_at_once

__all__ = ["GENERATORS", "Copy", "Generator", "GeneratorError", "Messages", "answers_at_once",
           "make_generator", "smollm2_gguf"]
