"""Smoke test of the load tools (workbench/load_bot.py, workbench/load_rest.py) at a tiny size
against the real parts (TorchServe with tiny seeded weights, the fake Bot API, the bot
process): the counts they check and the JSON shape docs/reliability.md quotes. The real runs
(shipped weights, 50 x 3 users, 16 clients) are in docs/load_*.json."""

from __future__ import annotations

import asyncio
import json

import pytest

from workbench import load_bot, load_common, load_rest

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TINY_PRESETS = ["candy", "mosaic", "udnie"]


def test_load_bot_two_users_get_their_results(tiny_weights_path, tmp_path):
    report = asyncio.run(load_bot.run(2, 2, tmp_path, tiny_weights_path,
                                      presets=TINY_PRESETS))
    assert report["jobs"] == 4 and report["delivered_ok"] == 4, report["failed"]
    assert report["results_per_user"] == {"expected": 2, "min": 2, "max": 2,
                                          "users_with_wrong_count": 0}
    assert report["results_to_unknown_chats"] == 0 and not report["worker_restarted"]
    assert report["kinds"]["upload"] >= 1 and report["kinds"]["preset"] >= 1
    assert report["time_to_result_s"]["p95"] is not None
    assert report["memory_mb"]["bot_rss_mb"]["peak"] > 0
    assert report["memory_mb"]["worker_rss_mb"]["peak"] > 0
    out = tmp_path / "bot.json"
    load_common.write_json(out, report)
    assert json.loads(out.read_text())["delivered_ok"] == 4
    assert "delivered ok" in load_bot.summary(report)


def test_load_rest_two_clients_bad_requests_get_4xx(tiny_weights_path, tmp_path):
    report = asyncio.run(load_rest.run(2, 5, tmp_path, tiny_weights_path,
                                       presets=TINY_PRESETS, first=9))
    assert report["requests"] >= 3, report
    bad = sum(sum(c.values()) for k, c in report["by_kind"].items() if k != "good")
    assert bad >= 1, report["by_kind"]  # request 9 is bad
    assert report["other_5xx"] == 0 and report["bad_not_4xx"] == 0, report["by_kind"]
    assert not report["worker_restarted"]
    assert report["status_counts"].get("200", 0) >= 1
    assert report["latency_ok_s"]["p50"] is not None
    assert set(report["memory_mb"]) == {"worker_rss_mb", "frontend_rss_mb"}
    assert "status counts" in load_rest.summary(report)


def test_request_mix_is_one_in_ten_bad():
    kinds = [load_rest.request_fields(i)[0] for i in range(100)]
    assert kinds.count("good") == 90
    assert set(kinds) - {"good"} == set(load_rest.BAD_KINDS)
    plan = load_bot.plan(5, 3)
    assert sum(len(p) for p in plan) == 15
    assert {j["kind"] for p in plan for j in p} == {"preset", "upload"}
