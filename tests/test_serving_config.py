"""The serving configuration agrees with itself (issue 15): the gRPC APIs on loopback in
the container config too, and allowed_urls that admit this checkout's archives only."""

from __future__ import annotations

import re
from pathlib import Path

from scripts import ts_client

ROOT = Path(__file__).resolve().parents[1]


def java_pattern(pattern: str) -> re.Pattern[str]:
    """A Java regex using \\Q...\\E quoting, as Python's re (enough for allowed_urls)."""
    return re.compile(re.sub(r"\\Q(.*?)\\E", lambda m: re.escape(m.group(1)), pattern))


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
