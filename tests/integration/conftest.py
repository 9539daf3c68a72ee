"""A real TorchServe for the integration tests: started once per session on free ports.

It serves a .mar built by scripts/build_mar.py from the tiny seeded weights of
tests/conftest.py (ngf=8, presets candy/mosaic/udnie; a preview for candy only), with a copy
of the repository's config.properties whose addresses, model store and allowed_urls point at
temporary ones.
The torchserve CLI gets a private TMPDIR (its pid file lives there) and the frontend a private
java.io.tmpdir, so a developer's own TorchServe on this machine is never touched. The server
is always stopped at the end, and the cold-start timings are printed in the test summary.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
sys.path.insert(0, str(SCRIPTS))
import ts_client  # noqa: E402  (scripts/ is not a package)

PYTHON = sys.executable
TORCHSERVE = str(Path(PYTHON).with_name("torchserve"))
MODEL = "msgnet"
BATCH_DELAY_MS = 250  # long enough for concurrent test requests to meet in one batch
TIMINGS: dict[str, float] = {}


@dataclass
class Server:
    """URLs, folders and keys of the running test TorchServe."""

    inference: str
    management: str
    metrics: str
    workdir: Path
    store: Path
    config: Path
    logs: Path
    model_config: Path
    previews: Path
    env: dict = field(repr=False, default_factory=dict)

    @property
    def key_file(self) -> Path:
        return self.workdir / "key_file.json"

    def keys(self) -> ts_client.Keys:
        return ts_client.read_keys(self.key_file)

    def auth(self, kind: str = "inference") -> dict[str, str]:
        return ts_client.auth_headers(getattr(self.keys(), kind))

    def predictions_url(self, version: str | None = None) -> str:
        return f"{self.inference}/predictions/{MODEL}" + (f"/{version}" if version else "")

    def build_mar(self, weights: Path, version: str, archive_name: str = MODEL) -> Path:
        cmd = [PYTHON, str(SCRIPTS / "build_mar.py"), "--weights", str(weights),
               "--version", version, "--output-dir", str(self.store),
               "--archive-name", archive_name, "--model-config", str(self.model_config),
               "--previews", str(self.previews)]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        return self.store / f"{archive_name}.mar"

    def script(self, name: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run one of our scripts against this server (config + key file of the test)."""
        cmd = [PYTHON, str(SCRIPTS / name), *args]
        env = {**os.environ, "TS_CONFIG": str(self.config), "TS_KEY_FILE": str(self.key_file)}
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)

    def log_tail(self, lines: int = 40) -> str:
        out = []
        for name in ("ts_log.log", "model_log.log"):
            path = self.logs / name
            if path.is_file():
                out.append(f"--- {name}\n" + "\n".join(path.read_text().splitlines()[-lines:]))
        return "\n".join(out)


def _stop(server: Server, proc: subprocess.Popen) -> None:
    subprocess.run([TORCHSERVE, "--stop"], cwd=server.workdir, env=server.env,
                   capture_output=True, timeout=60)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pass
    # the launcher, the Java frontend and its Python workers share the session we created
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


@pytest.fixture(scope="session")
def torchserve(tmp_path_factory, tiny_weights_path) -> Server:
    base = tmp_path_factory.mktemp("torchserve")
    workdir, store, logs, tmp = (base / "run", base / "store", base / "logs", base / "tmp")
    previews = base / "previews"
    for d in (workdir, store, logs, tmp, previews):
        d.mkdir()
    Image.new("RGB", (32, 32), (220, 40, 40)).save(previews / "candy.jpg", "JPEG")

    model_config = base / "model-config.yaml"
    cfg = yaml.safe_load((ROOT / "handler" / "model-config.yaml").read_text())
    cfg.update(batchSize=4, maxBatchDelay=BATCH_DELAY_MS, minWorkers=1, maxWorkers=1)
    model_config.write_text(yaml.safe_dump(cfg))

    config = base / "config.properties"
    endpoints = ts_client.write_private_config(config, store,
                                               load_models=f"{MODEL}={MODEL}.mar")
    env = {**os.environ, "TMPDIR": str(tmp), "TEMP": str(tmp), "LOG_LOCATION": str(logs),
           "METRICS_LOCATION": str(logs)}
    env.pop("TS_CONFIG_FILE", None)  # it would override --ts-config
    server = Server(inference=endpoints.inference, management=endpoints.management,
                    metrics=endpoints.metrics,
                    workdir=workdir, store=store, config=config, logs=logs,
                    model_config=model_config, previews=previews, env=env)

    started = time.perf_counter()
    server.build_mar(tiny_weights_path, "1.0")
    TIMINGS["build .mar (tiny weights)"] = time.perf_counter() - started

    started = time.perf_counter()
    with open(logs / "torchserve.out", "wb") as out:
        proc = subprocess.Popen(
            [TORCHSERVE, "--start", "--ncs", "--foreground", "--ts-config", str(config),
             "--model-store", str(store)],
            cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        try:
            ts_client.wait_ready(endpoints, MODEL, timeout=180, key_file=server.key_file,
                                 is_alive=lambda: proc.poll() is None)
        except ts_client.TorchServeError as exc:
            pytest.fail(f"TorchServe did not start: {exc}\n{server.log_tail()}")
        TIMINGS["TorchServe cold start to READY"] = time.perf_counter() - started
        _first_prediction(server)
        TIMINGS["TorchServe cold start to first prediction"] = time.perf_counter() - started
        yield server
    finally:
        _stop(server, proc)


def _first_prediction(server: Server) -> None:
    """One real stylization, so the cold-start timing covers the first forward pass."""
    import io
    import urllib.request
    import uuid

    buf = io.BytesIO()
    Image.new("RGB", (96, 64), (10, 120, 200)).save(buf, "PNG")
    boundary = uuid.uuid4().hex
    parts = [("content", buf.getvalue(), "a.png"), ("style_id", b"candy", None),
             ("size", b"64", None)]
    body = b""
    for name, value, filename in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += (f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
                 + value + b"\r\n")
    body += f"--{boundary}--\r\n".encode()
    headers = {**server.auth(), "Content-Type": f"multipart/form-data; boundary={boundary}"}
    request = urllib.request.Request(server.predictions_url(), data=body, headers=headers)
    with urllib.request.urlopen(request, timeout=120) as response:
        assert response.status == 200 and response.headers["Content-Type"] == "image/jpeg"


def pytest_terminal_summary(terminalreporter):
    if TIMINGS:
        terminalreporter.section("TorchServe timings")
        for name, seconds in TIMINGS.items():
            terminalreporter.write_line(f"{name}: {seconds:.1f} s")
