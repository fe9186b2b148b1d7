"""The one registry style of legible: ``@register_x("name")`` on a factory or class, ``make_x(name)``, and
``x_names()``. Tasks, paraphrasers, reward terms and stego schemes each keep one :class:`Registry`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind; an unknown name is a ValueError that lists the known ones."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """A decorator that registers its target under ``name`` (a later registration replaces it)."""

        def wrap(entry: T) -> T:
            self._entries[name] = entry
            return entry

        return wrap

    def add(self, name: str, entry: T) -> None:
        self._entries[name] = entry

    def __getitem__(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise ValueError(f"unknown {self.kind} {name!r}; choose from {self.names()}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def items(self) -> list[tuple[str, T]]:
        return list(self._entries.items())
