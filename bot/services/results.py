"""Bounded stores of result files, for the "full-quality file" button.

Telegram recompresses photos, so the button sends the server's original bytes as a document.
Keeping a few per user (and a global byte cap) bounds memory; an evicted result is made again
from its job spec. :class:`ResultCache` is a replica's own memory; :class:`SharedResultBudget`
bounds the bytes of all users' results that the replicas keep together in Redis, which also
holds everyone's FSM state (docs/reliability.md, "Redis memory").
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis

MIB = 1024 * 1024
# all users' results in Redis together: 64 MiB of the 112 MiB maxmemory of the Redis in
# docker-compose.yml and deploy/k8s/redis.yaml, the rest for FSM state, locks and records
# (tests/deploy/test_redis_memory.py checks the two agree)
SHARED_RESULTS_TOTAL_BYTES = 64 * MIB


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


class SharedResultBudget:
    """The total bytes of the results in Redis, for all replicas: a sorted set (no TTL, so
    never evicted) of ``<result key>|<bytes>`` by the time each was stored. Before a result
    is stored the oldest ones are deleted until it fits, so Redis never has to evict for
    results, and its ``maxmemory`` is reserved for state. Entries whose key is gone (expired,
    replaced, deleted) are dropped from the count as they are found."""

    def __init__(self, redis: Redis, key: str, total_bytes: int = SHARED_RESULTS_TOTAL_BYTES):
        self.redis = redis
        self.key = key
        self.total_bytes = total_bytes

    async def make_room(self, size: int) -> int:
        """Delete the oldest results until ``size`` more bytes fit; how many were deleted."""
        entries = await self.redis.zrange(self.key, 0, -1)  # oldest first
        parsed = [(entry, *_split(entry)) for entry in entries]
        async with self.redis.pipeline(transaction=False) as pipe:
            for _, result_key, _ in parsed:
                pipe.exists(result_key)
            alive = await pipe.execute() if parsed else []
        gone = [entry for (entry, _, _), n in zip(parsed, alive, strict=True) if not n]
        live = [item for item, n in zip(parsed, alive, strict=True) if n]
        total = sum(nbytes for _, _, nbytes in live)
        evict = []
        while live and total + size > self.total_bytes:
            item = live.pop(0)
            evict.append(item)
            total -= item[2]
        if gone or evict:
            async with self.redis.pipeline(transaction=False) as pipe:
                if evict:
                    pipe.delete(*(result_key for _, result_key, _ in evict))
                pipe.zrem(self.key, *gone, *(entry for entry, _, _ in evict))
                await pipe.execute()
        return len(evict)

    async def add(self, result_key: str, size: int) -> None:
        """Count a stored result."""
        await self.redis.zadd(self.key, {f"{result_key}|{size}": time.time()})

    async def used(self) -> int:
        """Bytes counted now (entries whose key is gone included until the next make_room)."""
        return sum(_split(entry)[1] for entry in await self.redis.zrange(self.key, 0, -1))


def _split(entry: bytes | str) -> tuple[str, int]:
    text = entry.decode() if isinstance(entry, bytes) else entry
    result_key, _, nbytes = text.rpartition("|")
    return result_key, int(nbytes)
