"""TorchServe's "Worker died." answer in the bot's client, against the fake TorchServe: one
retry at once, then a server error the bot explains (issue 15, section 3). The same fault
with a real TorchServe and a SIGKILLed worker: tests/integration/test_server_faults.py."""

from __future__ import annotations

import time

import aiohttp
import pytest
from bot_helpers import dims, jpeg

from bot.services import torchserve as ts

# TorchServe 0.12's body for the requests a dying worker held (WorkerThread: "Worker died.",
# 500; 507 when the worker's exit status was 137)
DIED_500 = (500, {"code": 500, "type": "InternalServerException", "message": "Worker died."})
DIED_507 = (507, {"code": 507, "type": "InternalServerException", "message": "Worker died."})


@pytest.fixture
async def client(fts):
    c = ts.TorchServeClient(fts.url, "msgnet", key=ts.InferenceKey("inference-key"),
                            retry_delay=0.01, retries=3)
    yield c
    await c.close()


@pytest.mark.parametrize("died", [DIED_500, DIED_507])
async def test_a_worker_death_is_retried_once_and_the_retry_answers(fts, client, died):
    fts.script.fail = [died]
    out = await client.stylize(jpeg(300, 200), style_id="candy", size=256)
    assert dims(out.data) == (256, 171)
    assert len(fts.requests) == 2  # the first attempt and one retry


async def test_a_second_worker_death_is_a_server_error_not_a_third_try(fts, client):
    fts.script.fail = [DIED_500, DIED_507, DIED_500]
    with pytest.raises(ts.TorchServeError) as err:
        await client.stylize(jpeg(64, 64), style_id="candy")
    assert (err.value.kind, err.value.code, err.value.attempts) == (ts.SERVER, ts.WORKER_DIED, 2)
    assert len(fts.requests) == 2


async def test_the_handlers_own_500_is_not_retried(fts, client):
    fts.script.fail = [(500, {"code": "internal_error", "message": "Worker died."})]
    with pytest.raises(ts.TorchServeError) as err:
        await client.stylize(jpeg(64, 64), style_id="candy")
    assert (err.value.kind, err.value.code) == (ts.SERVER, "internal_error")
    assert len(fts.requests) == 1


def test_a_death_late_in_the_timeout_is_not_retried():
    """A worker killed for running past responseTimeout would run as long again."""
    timeout = aiohttp.ClientTimeout(total=180)
    assert ts.TorchServeClient._retry_death(False, time.monotonic() - 1, timeout, "stylize")
    assert not ts.TorchServeClient._retry_death(False, time.monotonic() - 100, timeout, "x")
    assert not ts.TorchServeClient._retry_death(True, time.monotonic(), timeout, "stylize")
