"""LRU cache of style targets (Gram matrices), so repeated styles skip the encoder.

Keyed by the SHA-256 of the style's bytes plus the style size it was encoded at: the same
picture encoded at another size gives another target. Presets never enter the cache - they
are read from the weights' preset bank, which is already a lookup.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

V = TypeVar("V")
StyleKey = tuple[str, int]


class StyleCache(Generic[V]):
    """A small LRU map counting its hits and misses (reported as metrics by the handler)."""

    def __init__(self, capacity: int):
        if capacity < 0:
            raise ValueError("cache capacity must be >= 0")
        self.capacity = capacity
        self._items: OrderedDict[StyleKey, V] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(digest: str, style_size: int) -> StyleKey:
        return (digest, int(style_size))

    def get(self, key: StyleKey) -> V | None:
        """The cached value (now most recently used), or None; counts a hit or a miss."""
        value = self._items.get(key)
        if value is None:
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return value

    def put(self, key: StyleKey, value: V) -> None:
        if self.capacity == 0:
            return
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        self._items.clear()
