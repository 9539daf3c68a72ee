"""The real bot as a subprocess (``python -m bot``), for end-to-end tests and the workbench's
demos and load tests."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# variables of a developer's shell that must not leak into a test bot
SCRUBBED_PREFIXES = ("BOT_", "TS_", "TELEGRAM_", "WEBHOOK_", "REDIS_", "ALLOWED_", "METRICS_",
                     "RATE_LIMIT_", "MAX_", "JOB_", "LOG_")


class BotProcess:
    def __init__(self, env: dict[str, str], log_path: Path, python: str = sys.executable):
        base = {k: v for k, v in os.environ.items() if not k.startswith(SCRUBBED_PREFIXES)}
        self.env = {**base, "BOT_DOTENV": "", "PYTHONUNBUFFERED": "1", **env}
        self.log_path = log_path
        self.python = python
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([self.python, "-m", "bot"], cwd=ROOT, env=self.env,
                                         stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def start_polling(self, tg, timeout: float) -> None:
        """Start, and wait until it asks the fake Bot API ``tg`` for updates."""
        first = len(tg.events)
        self.start()
        try:
            await tg.wait_event(lambda e: e.method == "getUpdates", timeout, first)
        except AssertionError:
            raise AssertionError(f"the bot did not start polling:\n{self.log()}") from None

    async def stop_cleanly(self, token: str) -> None:
        """Stop it; it must exit 0 (unless a test SIGKILLed it) and never have logged
        ``token`` (whole or its secret half) or a traceback."""
        code = await self.stop()
        log = self.log()
        if self.proc is not None and self.proc.returncode == -signal.SIGKILL:
            return  # killed on purpose by the test
        assert code == 0, f"the bot exited with {code}:\n{log[-3000:]}"
        assert token not in log and token.split(":")[-1] not in log, "the token was logged"
        assert "Traceback" not in log, log[-3000:]

    async def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (a graceful shutdown), then SIGKILL after ``timeout``; the exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.proc.wait, timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                await asyncio.to_thread(self.proc.wait, 10)
        return self.proc.returncode
