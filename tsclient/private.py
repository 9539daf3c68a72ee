"""A private TorchServe on free ports: the one way the tests, the benchmark and the demo start
their own server.

Everything lives under one base folder (``run/`` is the working directory, where TorchServe
writes ``key_file.json``; ``store/``, ``logs/``, ``tmp/``). The config is the repository's
config.properties with every port moved to a free one (``write_private_config``); the
torchserve CLI gets a private TMPDIR (its pid file lives there) and the frontend a private
java.io.tmpdir, so a developer's own TorchServe on this machine is never touched.

    server = PrivateTorchServe(base)
    server.build_mar(weights, "--version", "1.0")
    with server.running(timeout=180):
        ...  # server.endpoints, server.keys(), server.predictions_url()
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tsclient.config import ROOT, write_private_config
from tsclient.errors import TorchServeError
from tsclient.http import wait_ready
from tsclient.keys import Keys, auth_headers, read_keys

PYTHON = sys.executable
TORCHSERVE = str(Path(PYTHON).with_name("torchserve"))


class PrivateTorchServe:
    """Folders, config and process of one private TorchServe serving ``model``."""

    def __init__(
        self, base: Path, model: str = "msgnet", env: dict[str, str] | None = None, **config: str
    ):
        self.base, self.model = base, model
        self.workdir, self.store, self.logs, self.tmp = (
            base / "run",
            base / "store",
            base / "logs",
            base / "tmp",
        )
        for d in (self.workdir, self.store, self.logs, self.tmp):
            d.mkdir(parents=True, exist_ok=True)
        self.config = base / "config.properties"
        self.endpoints = write_private_config(
            self.config, self.store, **{"load_models": f"{model}={model}.mar", **config}
        )
        self.env = {
            **os.environ,
            "TMPDIR": str(self.tmp),
            "TEMP": str(self.tmp),
            "LOG_LOCATION": str(self.logs),
            "METRICS_LOCATION": str(self.logs),
            **(env or {}),
        }
        self.env.pop("TS_CONFIG_FILE", None)  # it would override --ts-config
        self.proc: subprocess.Popen | None = None

    @property
    def key_file(self) -> Path:
        return self.workdir / "key_file.json"

    def keys(self) -> Keys:
        return read_keys(self.key_file)

    def auth(self, kind: str = "inference") -> dict[str, str]:
        return auth_headers(getattr(self.keys(), kind))

    def predictions_url(self, version: str | None = None) -> str:
        return f"{self.endpoints.inference}/predictions/{self.model}" + (
            f"/{version}" if version else ""
        )

    def build_mar(
        self, weights: Path, *args: str, archive_name: str | None = None, timeout: float = 600
    ) -> Path:
        """``scripts.build_mar`` into the store; raises TorchServeError with its output."""
        name = archive_name or self.model
        cmd = [
            PYTHON,
            "-m",
            "scripts.build_mar",
            "--weights",
            str(weights),
            "--output-dir",
            str(self.store),
            "--archive-name",
            name,
            *args,
        ]
        built = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        if built.returncode != 0:
            raise TorchServeError(f"build_mar failed:\n{built.stdout}{built.stderr}")
        return self.store / f"{name}.mar"

    def log_tail(self, lines: int = 40) -> str:
        out = []
        for name in ("torchserve.out", "ts_log.log", "model_log.log"):
            path = self.logs / name
            if path.is_file():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {name}\n" + "\n".join(text))
        return "\n".join(out)

    def start(self, timeout: float = 300, workers: int = 1) -> float:
        """Start and wait for ``workers`` READY workers; the seconds that took. On failure
        the server is stopped and TorchServeError carries the log tail."""
        started = time.perf_counter()
        with open(self.logs / "torchserve.out", "wb") as out:
            self.proc = subprocess.Popen(
                [
                    TORCHSERVE,
                    "--start",
                    "--ncs",
                    "--foreground",
                    "--ts-config",
                    str(self.config),
                    "--model-store",
                    str(self.store),
                ],
                cwd=self.workdir,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        proc = self.proc
        try:
            wait_ready(
                self.endpoints,
                self.model,
                timeout,
                key_file=self.key_file,
                is_alive=lambda: proc.poll() is None,
                workers=workers,
            )
        except TorchServeError as exc:
            self.stop()
            raise TorchServeError(f"TorchServe did not start: {exc}\n{self.log_tail()}") from exc
        return time.perf_counter() - started

    def stop(self) -> None:
        if self.proc is None:
            return
        subprocess.run(
            [TORCHSERVE, "--stop"], cwd=self.workdir, env=self.env, capture_output=True, timeout=60
        )
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
        try:  # the launcher, the Java frontend and its workers share the session we created
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)
        self.proc = None

    @contextmanager
    def running(self, timeout: float = 300, workers: int = 1) -> Iterator[float]:
        """Serve until the block ends; yields the seconds from start to READY."""
        seconds = self.start(timeout, workers)
        try:
            yield seconds
        finally:
            self.stop()
