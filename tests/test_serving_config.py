"""The serving configuration agrees with itself (issue 15): timeouts that fit inside each
other, the gRPC APIs on loopback in the container config too, and allowed_urls that admit
this checkout's archives only."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from bot.config import Settings
from scripts import ts_client

ROOT = Path(__file__).resolve().parents[1]
MODEL_CONFIG = yaml.safe_load((ROOT / "handler" / "model-config.yaml").read_text())


def java_pattern(pattern: str) -> re.Pattern[str]:
    """A Java regex using \\Q...\\E quoting, as Python's re (enough for allowed_urls)."""
    return re.compile(re.sub(r"\\Q(.*?)\\E", lambda m: re.escape(m.group(1)), pattern))


def test_timeouts_fit_inside_each_other():
    queue_s = MODEL_CONFIG["clientTimeoutInMills"] / 1000
    response_s = MODEL_CONFIG["responseTimeout"]
    bot_s = Settings.model_fields["ts_timeout"].default
    job_s = Settings.model_fields["job_timeout"].default
    # the bot never gives up on a request the worker may still answer, nor a job on its request
    assert queue_s + response_s <= bot_s <= job_s
    # a worker killed for a slow batch is restarted before /ping calls the model unhealthy
    assert MODEL_CONFIG["maxRetryTimeoutInSec"] >= response_s
    table = (ROOT / "docs" / "reliability.md").read_text()
    for value in (queue_s, response_s, bot_s, job_s, MODEL_CONFIG["maxRetryTimeoutInSec"]):
        assert f"| {value:g} s |" in table, value


def test_grpc_listens_on_loopback_in_both_configs():
    for path in (ROOT / "config.properties", ROOT / "deploy" / "config.properties"):
        props = ts_client.read_properties(path)
        assert props["grpc_inference_address"] == "127.0.0.1", path
        assert props["grpc_management_address"] == "127.0.0.1", path


def test_anchored_config_admits_only_this_model_store(tmp_path):
    store = tmp_path / "odd.name [1]" / "model_store"
    store.mkdir(parents=True)
    out = tmp_path / "config.properties"
    assert ts_client.main(["anchor", "--config", str(ROOT / "config.properties"),
                           "--model-store", str(store), "--output", str(out)]) == 0
    props = ts_client.read_properties(out)
    assert props["model_store"] == str(store.resolve())
    allowed = java_pattern(props["allowed_urls"])
    assert allowed.fullmatch(f"file://{store.resolve()}/msgnet-v2.mar")
    for other in (f"file://{tmp_path}/model_store/x.mar", "file:///tmp/model_store/x.mar",
                  f"file://{store.resolve()}/sub/x.mar", f"file://{store.resolve()}/x.mar.zip",
                  f"file://{str(store.resolve()).replace('.', 'X')}/x.mar"):
        assert not allowed.fullmatch(other), other
    # everything else is the repository's file
    assert props["inference_address"] == ts_client.read_properties(
        ROOT / "config.properties")["inference_address"]


def test_serve_sh_starts_torchserve_with_the_anchored_config_under_umask_077():
    script = (ROOT / "scripts" / "serve.sh").read_text()
    assert "scripts.ts_client anchor" in script
    start = script.index("(umask 077")
    assert script.index('--ts-config "$RUN_DIR/config.properties"') > start
