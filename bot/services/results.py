"""A bounded in-memory cache of result files, for the "full-quality file" button.

Telegram recompresses photos, so the button sends the server's original bytes as a document.
Keeping a few per user (and a global byte cap) bounds memory; an evicted result is made again
from its job spec.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class StoredResult:
    user_id: int
    data: bytes
    filename: str


class ResultCache:
    def __init__(self, per_user: int = 3, max_bytes: int = 200 * 1024 * 1024):
        self.per_user = per_user
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, StoredResult] = OrderedDict()
        self._bytes = 0

    def put(self, user_id: int, data: bytes, filename: str) -> str:
        rid = secrets.token_hex(5)
        if self.per_user <= 0 or len(data) > self.max_bytes:
            return rid
        self._items[rid] = StoredResult(user_id, data, filename)
        self._bytes += len(data)
        mine = [k for k, v in self._items.items() if v.user_id == user_id]
        for key in mine[:-self.per_user]:
            self._drop(key)
        while self._bytes > self.max_bytes and self._items:
            self._drop(next(iter(self._items)))
        return rid

    def get(self, user_id: int, rid: str) -> StoredResult | None:
        item = self._items.get(rid)
        if item is None or item.user_id != user_id:  # never hand out another user's file
            return None
        self._items.move_to_end(rid)
        return item

    def forget_user(self, user_id: int) -> None:
        for key in [k for k, v in self._items.items() if v.user_id == user_id]:
            self._drop(key)

    def _drop(self, key: str) -> None:
        item = self._items.pop(key)
        self._bytes -= len(item.data)

    def __len__(self) -> int:
        return len(self._items)
