"""Named backends of one family (stores, embedding encoders, generators, file loaders).

A backend registers itself where it is defined (`@STORES.register("faiss")`). The family's
registry only knows, as text, which module holds each built-in name, and imports that module
when the name is first asked for: choosing a backend never imports the others or their heavy
clients (pymilvus, torch, llama.cpp), and no base module imports its backends. A backend of
your own registers the same way from your module; import it before asking for its name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, family: str, modules: dict[str, str] | None = None):
        self.family = family
        self._modules = dict(modules or {})
        """Built-in names and the module that registers each (imported on first use)."""
        self._entries: dict[str, T] = {}

    def register(self, *names: str) -> Callable[[T], T]:
        """Decorator: `@REGISTRY.register("name", "alias")` over a class or factory."""
        def add(entry: T) -> T:
            for name in names:
                self._entries[name] = entry
            return entry

        return add

    def get(self, name: str) -> T:
        if name not in self._entries and name in self._modules:
            importlib.import_module(self._modules[name])
        try:
            return self._entries[name]
        except KeyError:
            raise ValueError(f"unknown {self.family} {name!r}; choose one of "
                             f"{', '.join(self.names())}") from None

    def names(self) -> list[str]:
        return list(dict.fromkeys([*self._modules, *self._entries]))

    def __contains__(self, name: object) -> bool:
        return name in self._entries or name in self._modules
