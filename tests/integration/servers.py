"""The real TorchServes of the integration and end-to-end tests (a shared fixture module: the
conftests and test modules that need a server import its fixtures, so each of them gets its own
instance, as before): ``torchserve``, started once per session on free ports, and
``learn_server``, with the learn model, once per module.

It serves a .mar built by scripts/build_mar.py from the tiny seeded weights of
tests/conftest.py (ngf=8, presets candy/mosaic/udnie; a preview for candy only), as a
``tsclient.private.PrivateTorchServe`` (free ports, private folders: a developer's own
TorchServe on this machine is never touched). The server is always stopped at the end, and the
cold-start timings are printed in the test summary.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from PIL import Image
from weights_factory import save_tiny_vgg

import tsclient
from fakes.images import noise_image
from scripts import learn_model
from tsclient.private import PrivateTorchServe

ROOT = tsclient.ROOT
PYTHON = sys.executable
MODEL = "msgnet"
CLIP_MODEL = "msgnet_clip"
CLIP_SIZE = 96  # the test server's default clip output size
BATCH_DELAY_MS = 250  # long enough for concurrent test requests to meet in one batch
TIMINGS: dict[str, float] = {}


class Server(PrivateTorchServe):
    """The test TorchServe: its URLs, folders and keys, the model config and previews its
    archives are built with, and our scripts run against it."""

    def __init__(self, base: Path):
        # clips default to 96 px here (480 in the archive): the bot's clips send no size, and
        # the photo model drops answers later than its clientTimeoutInMills (30 s)
        super().__init__(base, MODEL, env={"MSGNET_CLIP_SIZE": str(CLIP_SIZE)})
        self.inference = self.endpoints.inference
        self.management = self.endpoints.management
        self.metrics = self.endpoints.metrics
        self.previews = base / "previews"
        self.previews.mkdir()
        Image.new("RGB", (32, 32), (220, 40, 40)).save(self.previews / "candy.jpg", "JPEG")
        self.model_config = base / "model-config.yaml"
        cfg = yaml.safe_load((ROOT / "handler" / "model-config.yaml").read_text())
        cfg.update(batchSize=4, maxBatchDelay=BATCH_DELAY_MS, minWorkers=1, maxWorkers=1)
        self.model_config.write_text(yaml.safe_dump(cfg))

    @property
    def state_file(self) -> Path:
        """Where ``scripts/ts_models.py`` saves this server's versions (for ``restore``)."""
        return self.base / "model_versions.json"

    def build_mar(self, weights: Path, version: str, archive_name: str = MODEL) -> Path:
        return super().build_mar(weights, "--version", version, "--model-config",
                                 str(self.model_config), "--previews", str(self.previews),
                                 archive_name=archive_name, timeout=300)

    def script(self, name: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run one of our scripts (``ts_models.py``: ``python -m scripts.ts_models``) against
        this server (config + key file of the test; ts_models' state file in the test's
        folder, never the checkout's logs/run/)."""
        cmd = [PYTHON, "-m", f"scripts.{Path(name).stem}", *args]
        env = {**os.environ, "TS_CONFIG": str(self.config), "TS_KEY_FILE": str(self.key_file),
               "TS_MODELS_STATE": str(self.state_file)}
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                              cwd=ROOT)


@contextmanager
def clip_model_registered(server: Server) -> Iterator[str]:
    """The server's archive registered a second time as ``msgnet_clip``: a worker of its own,
    as scripts/serve.sh does (there the clip archive also has batch size 1; here the photo
    archive's 250 ms batch delay, so a lone clip is still alone in its batch). Yields its
    predictions URL; the model is unregistered at the end."""
    management, key = server.management, server.keys().management
    started = time.perf_counter()
    tsclient.call("POST", f"{management}/models?url={server.model}.mar&model_name="
                   f"{CLIP_MODEL}&initial_workers=1&batch_size=1&synchronous=true", key,
                   timeout=300)
    TIMINGS[f"register {CLIP_MODEL} on {server.base.name} (1 worker)"] = (
        time.perf_counter() - started)
    try:
        yield f"{server.inference}/predictions/{CLIP_MODEL}"
    finally:
        tsclient.call("DELETE", f"{management}/models/{CLIP_MODEL}", key, timeout=120)


@pytest.fixture(scope="session")
def torchserve(tmp_path_factory, tiny_weights_path) -> Server:
    server = Server(tmp_path_factory.mktemp("torchserve"))
    started = time.perf_counter()
    server.build_mar(tiny_weights_path, "1.0")
    TIMINGS["build .mar (tiny weights)"] = time.perf_counter() - started

    started = time.perf_counter()
    try:
        server.start(timeout=180)
    except tsclient.TorchServeError as exc:
        pytest.fail(str(exc))
    try:
        TIMINGS["TorchServe cold start to READY"] = time.perf_counter() - started
        _first_prediction(server)
        TIMINGS["TorchServe cold start to first prediction"] = time.perf_counter() - started
        yield server
    finally:
        server.stop()


def _first_prediction(server: Server) -> None:
    """One real stylization, so the cold-start timing covers the first forward pass."""
    import io

    buf = io.BytesIO()
    Image.new("RGB", (96, 64), (10, 120, 200)).save(buf, "PNG")
    body, ctype = tsclient.multipart([("content", buf.getvalue(), "a.png"),
                                       ("style_id", b"candy", None), ("size", b"64", None)])
    status, answer = tsclient.call("POST", server.predictions_url(), server.keys().inference,
                                    body, {"Content-Type": ctype}, timeout=120)
    assert status == 200 and isinstance(answer, bytes) and answer[:2] == b"\xff\xd8"


@pytest.fixture(scope="module")
def learn_server(tmp_path_factory, tiny_weights_path):
    base = tmp_path_factory.mktemp("torchserve-learn")
    photos = base / "photos"
    photos.mkdir()
    for i in range(4):
        noise_image(80 + 8 * i, 64, seed=40 + i).save(photos / f"p{i}.jpg", quality=90)
    save_tiny_vgg(base / "vgg.pt")
    env = {"MSGNET_STYLE_STORE": str(base / "styles"), "MSGNET_VGG": str(base / "vgg.pt"),
           "MSGNET_LEARN_PHOTOS": str(photos), "MSGNET_WARMUP": "0"}
    server = PrivateTorchServe(base / "ts", "msgnet", env=env, load_models=(
        f"msgnet=msgnet.mar,{learn_model.LEARN_MODEL}={learn_model.LEARN_MODEL}.mar"))
    started = time.perf_counter()
    server.build_mar(tiny_weights_path, "--version", "1.0")
    learn_model.build(server.store, ["--weights", str(tiny_weights_path)])
    TIMINGS["build msgnet.mar + msgnet_learn.mar (tiny weights)"] = (
        time.perf_counter() - started)
    start_learn_server(server, "TorchServe with msgnet_learn: cold start to READY")
    try:
        yield server
    finally:
        server.stop()


def start_learn_server(server: PrivateTorchServe, label: str) -> None:
    """Start ``learn_server``'s TorchServe and wait for its learn model (timed as ``label``)."""
    started = time.perf_counter()
    try:
        server.start(timeout=180)
        tsclient.wait_ready(server.endpoints, learn_model.LEARN_MODEL, 180,
                             key_file=server.key_file)
    except tsclient.TorchServeError as exc:
        pytest.fail(str(exc))
    TIMINGS[label] = time.perf_counter() - started
