"""Coordination of several bot replicas through Redis (used only when ``REDIS_URL`` is set).

Behind one webhook Service, consecutive updates of one user may reach different replicas, so
what must hold for a user across the whole deployment lives here rather than in a process:

* a per-user in-flight lock (``SET NX`` with a TTL, kept alive while the job is queued or
  running, released when it ends): a second job from the same user on any replica is refused;
* cancellation: a replica that does not hold the user's job publishes the request on the
  channel of the replica that does (its id is in the lock's value); that replica cancels the
  job and tells the user, so the user hears about it exactly once;
* full-quality results (with a TTL and a size cap) for the "as a file" button;
* rate-limit counters shared by all replicas;
* recovery of jobs whose replica died (SIGKILL, OOM, a lost node): each job in flight has a
  record (``job:<user>``: its lock token, chat and language) next to its lock, and each live
  replica beats (``alive:<replica>``). A replica that finds a record whose replica has stopped
  beating, in two sweeps a beat-timeout apart (so a Redis blip does not count as a death),
  claims it (only one replica can), drops its lock and tells the user the job was lost.

Every Redis failure degrades to the single-process behaviour (logged), never to a crash: a
replica that cannot reach Redis still serves its own users.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError, WatchError

from bot.services.results import SHARED_RESULTS_TOTAL_BYTES, SharedResultBudget, StoredResult
from bot.services.tasks import stop_tasks

log = logging.getLogger(__name__)

# called on the owning replica with (user_id, job_id); True when it cancelled that job
CancelHandler = Callable[[int, str], Awaitable[bool]]
# called once per orphaned job with (user_id, the note its job was submitted with)
OrphanHandler = Callable[[int, dict[str, Any]], Awaitable[None]]
# a job's record outlives its lock (a day): a deployment down longer than the lock TTL still
# tells the user when it comes back
RECORD_EXTRA_MS = 24 * 3600 * 1000


class Coordinator:
    """Redis-backed per-user lock, cancel broadcast, result store and rate-limit counters."""

    def __init__(self, redis: Redis, *, lock_ttl: float, prefix: str = "image-styling:bot:",
                 replica: str | None = None, result_ttl: float = 3600.0,
                 result_max_bytes: int = 20 * 1024 * 1024, results_per_user: int = 3,
                 refresh_every: float | None = None,
                 results_total_bytes: int = SHARED_RESULTS_TOTAL_BYTES):
        self.redis = redis
        self.prefix = prefix
        self.replica = replica or secrets.token_hex(6)
        self.lock_ttl_ms = max(1000, int(lock_ttl * 1000))
        # the TTL only bounds a lock whose replica died; live ones are refreshed well before
        self.refresh_every = refresh_every or max(0.5, lock_ttl / 3)
        self.result_ttl_ms = max(1000, int(result_ttl * 1000))
        self.result_max_bytes = result_max_bytes
        self.results_per_user = results_per_user
        # all users' results together, so they never fill Redis's maxmemory (results.py)
        self.result_budget = SharedResultBudget(redis, f"{prefix}results-bytes",
                                                results_total_bytes)
        self._held: dict[int, str] = {}  # user -> lock token held by this replica
        self._on_cancel: CancelHandler | None = None
        self._tasks: list[asyncio.Task] = []
        self._handling: set[asyncio.Task] = set()  # cancels in progress (each may wait)
        self._subscribed = asyncio.Event()
        self._closing = False
        self._beat_ms = 15_000  # how long a beat says "alive" (3 beats; start_recovery)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Coordinator:
        return cls(Redis.from_url(url), **kwargs)

    # --- keys -------------------------------------------------------------------------------

    def _lock_key(self, user_id: int) -> str:
        return f"{self.prefix}lock:{user_id}"

    def _channel(self, replica: str) -> str:
        return f"{self.prefix}cancel:{replica}"

    def _result_key(self, user_id: int, rid: str) -> str:
        # the user id is part of the key: nobody can fetch another user's file by its id
        return f"{self.prefix}result:{user_id}:{rid}"

    def _results_key(self, user_id: int) -> str:
        return f"{self.prefix}results:{user_id}"

    def _record_key(self, user_id: int) -> str:
        return f"{self.prefix}job:{user_id}"

    def _alive_key(self, replica: str) -> str:
        return f"{self.prefix}alive:{replica}"

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self, on_cancel: CancelHandler) -> None:
        """Listen for cancel requests addressed to this replica and keep its locks alive."""
        self._on_cancel = on_cancel
        if not self._tasks:
            self._closing = False
            self._subscribed.clear()
            self._tasks = [asyncio.create_task(self._listen(), name="coordination-cancel"),
                           asyncio.create_task(self._keep_alive(), name="coordination-locks")]
            # until subscribed, a cancel request for this replica would find no receiver
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._subscribed.wait(), 5)

    async def close(self) -> None:
        self._closing = True  # the loops end at their next turn even if a cancel is lost
        await stop_tasks(self._tasks)
        self._tasks = []
        if self._handling:
            await asyncio.wait(self._handling, timeout=5)
        for user_id, token in list(self._held.items()):
            await self._drop_record(user_id, token)
            await self._release_token(user_id, token)
        with contextlib.suppress(RedisError, OSError):
            await self.redis.delete(self._alive_key(self.replica))
        with contextlib.suppress(RedisError, OSError):
            await self.redis.aclose()

    # --- the per-user lock ------------------------------------------------------------------

    async def acquire(self, user_id: int, job_id: str,
                      note: dict[str, Any] | None = None) -> bool:
        """Take the user's lock for ``job_id``; False when a job of theirs is in flight on
        any replica. Without Redis the answer is True (this replica's own check still holds).
        With ``note`` (how to reach the user) the job gets a record for recovery."""
        token = f"{self.replica}:{job_id}"
        try:
            ok = await self.redis.set(self._lock_key(user_id), token, nx=True,
                                      px=self.lock_ttl_ms)
        except (RedisError, OSError) as exc:
            log.warning("redis unavailable, user lock not taken: %s", type(exc).__name__)
            return True
        if not ok:
            return False
        self._held[user_id] = token
        if note is not None:
            record = json.dumps({"token": token, "note": note})
            try:
                await self.redis.set(self._record_key(user_id), record,
                                     px=self.lock_ttl_ms + RECORD_EXTRA_MS)
            except (RedisError, OSError) as exc:  # the job runs; only its recovery is lost
                log.warning("redis unavailable, job record not kept: %s", type(exc).__name__)
        return True

    async def release(self, user_id: int, job_id: str) -> None:
        token = f"{self.replica}:{job_id}"
        if self._held.get(user_id) == token:
            del self._held[user_id]
        # the record first: while the lock is held no newer job of the user has a record
        await self._drop_record(user_id, token)
        await self._release_token(user_id, token)

    async def _drop_record(self, user_id: int, token: str) -> bool:
        """Delete the user's job record while it is still ``token``'s; True when deleted
        here (so of several replicas claiming an orphan, exactly one wins)."""
        key = self._record_key(user_id)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                await pipe.watch(key)
                raw = await pipe.get(key)
                if raw is None or json.loads(raw).get("token") != token:
                    return False
                pipe.multi()
                pipe.delete(key)
                await pipe.execute()
        except WatchError:
            return False
        except (RedisError, OSError) as exc:
            log.warning("redis unavailable, job record left: %s", type(exc).__name__)
            return False
        except ValueError:
            return False
        return True

    async def _release_token(self, user_id: int, token: str) -> None:
        """Delete the lock only while it is still ``token`` (never another job's lock)."""
        key = self._lock_key(user_id)
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                await pipe.watch(key)
                if await pipe.get(key) != token.encode():
                    return
                pipe.multi()
                pipe.delete(key)
                await pipe.execute()
        except WatchError:
            pass  # changed meanwhile: not ours any more
        except (RedisError, OSError) as exc:
            log.warning("redis unavailable, user lock left to expire: %s", type(exc).__name__)

    async def holder(self, user_id: int) -> str | None:
        """The replica holding the user's lock, or None."""
        value = await self.redis.get(self._lock_key(user_id))
        return value.decode().split(":", 1)[0] if value else None

    async def _keep_alive(self) -> None:
        while not self._closing:
            await asyncio.sleep(self.refresh_every)
            for user_id, token in list(self._held.items()):
                try:
                    await self._refresh(user_id, token)
                except (RedisError, OSError) as exc:
                    log.warning("redis unavailable, lock not refreshed: %s",
                                type(exc).__name__)
                    break

    async def _refresh(self, user_id: int, token: str) -> None:
        key = self._lock_key(user_id)
        with contextlib.suppress(WatchError):
            async with self.redis.pipeline(transaction=True) as pipe:
                await pipe.watch(key)
                if await pipe.get(key) != token.encode():
                    return
                pipe.multi()
                pipe.pexpire(key, self.lock_ttl_ms)
                pipe.pexpire(self._record_key(user_id), self.lock_ttl_ms + RECORD_EXTRA_MS)
                await pipe.execute()

    # --- jobs of dead replicas -------------------------------------------------------------

    async def start_recovery(self, on_orphan: OrphanHandler, beat: float = 5.0) -> None:
        """Beat every ``beat`` seconds (alive for 3 beats) and sweep for the jobs of replicas
        that stopped beating, telling ``on_orphan``; the first sweep runs now."""
        self._beat_ms = max(300, int(beat * 3000))
        with contextlib.suppress(RedisError, OSError):
            await self.redis.set(self._alive_key(self.replica), "1", px=self._beat_ms)
        self._tasks += [asyncio.create_task(self._beat(beat), name="coordination-beat"),
                        asyncio.create_task(self._recover(on_orphan, beat * 3),
                                            name="coordination-recovery")]

    async def _beat(self, every: float) -> None:
        while not self._closing:
            await asyncio.sleep(every)
            try:
                await self.redis.set(self._alive_key(self.replica), "1", px=self._beat_ms)
            except (RedisError, OSError) as exc:
                log.warning("redis unavailable, alive beat not sent: %s", type(exc).__name__)

    async def _recover(self, on_orphan: OrphanHandler, every: float) -> None:
        suspects: dict[str, bytes] = {}
        while not self._closing:
            try:
                suspects = await self.sweep(on_orphan, suspects)
            except (RedisError, OSError) as exc:
                log.warning("redis unavailable, orphaned jobs not swept: %s",
                            type(exc).__name__)
                suspects = {}  # an outage is no evidence: start over once it is back
            await asyncio.sleep(every)

    async def sweep(self, on_orphan: OrphanHandler,
                    suspects: dict[str, bytes]) -> dict[str, bytes]:
        """One sweep: claim the records already in ``suspects`` that are still orphaned and
        unchanged; return the newly orphaned ones (the suspects of the next sweep)."""
        found: dict[str, bytes] = {}
        prefix = self._record_key(0)[:-1]
        async for key in self.redis.scan_iter(match=f"{prefix}*", count=500):
            name = key.decode() if isinstance(key, bytes) else key
            raw = await self.redis.get(name)
            if raw is None:
                continue
            try:
                record = json.loads(raw)
                token, user_id = str(record["token"]), int(name[len(prefix):])
            except (ValueError, KeyError, TypeError):
                continue
            replica = token.partition(":")[0]
            if replica == self.replica or await self.redis.exists(self._alive_key(replica)):
                continue
            if suspects.get(name) != raw:
                found[name] = raw
                continue
            if not await self._drop_record(user_id, token):
                continue  # another replica claimed it, or the job ended after all
            log.warning("job %s of user %s was lost with replica %s: telling the user",
                        token.partition(":")[2], user_id, replica)
            await self._release_token(user_id, token)
            try:
                await on_orphan(user_id, record.get("note") or {})
            except Exception:
                log.exception("telling user %s about a lost job failed", user_id)
        return found

    # --- cancellation -----------------------------------------------------------------------

    async def request_cancel(self, user_id: int) -> bool:
        """Ask the replica holding the user's job to cancel it. True when that replica got the
        request (it then tells the user); False when no job is in flight anywhere."""
        try:
            value = await self.redis.get(self._lock_key(user_id))
            if value is None:
                return False
            token = value.decode()
            replica, _, job_id = token.partition(":")
            message = json.dumps({"user_id": user_id, "job_id": job_id})
            receivers = await self.redis.publish(self._channel(replica), message)
        except (RedisError, OSError) as exc:
            log.warning("redis unavailable, cancel not forwarded: %s", type(exc).__name__)
            return False
        if receivers:
            return True
        # nobody listens on that replica's channel: it is gone, and so is the job
        log.info("dropping the lock of user %s left by a replica that is gone", user_id)
        await self._release_token(user_id, token)
        return False

    async def _listen(self) -> None:
        delay = 0.5
        while not self._closing:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(self._channel(self.replica))
                self._subscribed.set()
                delay = 0.5
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        task = asyncio.create_task(self._handle(message["data"]))
                        self._handling.add(task)
                        task.add_done_callback(self._handling.discard)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.warning("cancel channel lost (%s), resubscribing", type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def _handle(self, data: bytes | str) -> None:
        try:
            request = json.loads(data)
            user_id, job_id = int(request["user_id"]), str(request["job_id"])
        except (ValueError, KeyError, TypeError):
            log.warning("ignoring a malformed cancel request")
            return
        if self._on_cancel is None:
            return
        try:
            await self._on_cancel(user_id, job_id)
        except Exception:
            log.exception("cancelling a job on request of another replica failed")

    # --- results ----------------------------------------------------------------------------

    async def put_result(self, user_id: int, rid: str, data: bytes, filename: str) -> bool:
        """Keep a result for ``result_ttl`` (the newest ``results_per_user`` of each user);
        False when it is over the size cap or Redis is unavailable."""
        if (self.results_per_user <= 0 or len(data) > self.result_max_bytes
                or len(data) > self.result_budget.total_bytes):
            return False
        key, index = self._result_key(user_id, rid), self._results_key(user_id)
        try:
            await self.result_budget.make_room(len(data))
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.hset(key, mapping={"data": data, "filename": filename})
                pipe.pexpire(key, self.result_ttl_ms)
                pipe.lpush(index, rid)
                pipe.pexpire(index, self.result_ttl_ms)
                await pipe.execute()
            await self.result_budget.add(key, len(data))
            old = await self.redis.lrange(index, self.results_per_user, -1)
            if old:
                await self.redis.ltrim(index, 0, self.results_per_user - 1)
                await self.redis.delete(*(self._result_key(user_id, r.decode()) for r in old))
        except (RedisError, OSError) as exc:
            log.warning("redis unavailable, result kept locally only: %s", type(exc).__name__)
            return False
        return True

    async def get_result(self, user_id: int, rid: str) -> StoredResult | None:
        try:
            item = await self.redis.hgetall(self._result_key(user_id, rid))
        except (RedisError, OSError) as exc:
            log.warning("redis unavailable, shared result not read: %s", type(exc).__name__)
            return None
        if not item or b"data" not in item:
            return None
        return StoredResult(user_id, item[b"data"], item.get(b"filename", b"").decode())

    async def forget_results(self, user_id: int) -> None:
        index = self._results_key(user_id)
        try:
            rids = await self.redis.lrange(index, 0, -1)
            keys = [self._result_key(user_id, r.decode()) for r in rids]
            await self.redis.delete(index, *keys)
        except (RedisError, OSError) as exc:
            log.warning("redis unavailable, shared results not removed: %s",
                        type(exc).__name__)

    # --- rate limit -------------------------------------------------------------------------

    async def rate_allow(self, user_id: int, burst: int, per_minute: float,
                         now: float | None = None, cost: int = 1) -> bool | None:
        """A fixed window of ``burst / rate`` seconds allowing ``burst`` tokens: the same
        average rate and burst as the per-process token bucket, counted for all replicas. An
        update spends ``cost`` tokens (a clip more than a photo, as in the bucket); a refused
        one spends none. None when Redis is unavailable (the caller then uses its own bucket)."""
        window = max(1.0, burst / (per_minute / 60.0))
        now = time.time() if now is None else now
        key = f"{self.prefix}rate:{user_id}:{int(now // window)}"
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incrby(key, cost)
                pipe.pexpire(key, int(window * 1000) + 1000)
                count, _ = await pipe.execute()
            if int(count) > burst:
                await self.redis.decrby(key, cost)  # refused: give its tokens back
        except (RedisError, OSError) as exc:
            log.warning("redis unavailable, local rate limit used: %s", type(exc).__name__)
            return None
        return int(count) <= burst
