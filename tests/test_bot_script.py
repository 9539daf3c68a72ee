"""scripts/bot.sh, which the README's first command uses to start the bot beside TorchServe."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_bot_sh(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(ROOT / "scripts" / "bot.sh"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOT_", "TS_"))}
    env["BOT_DOTENV"] = str(tmp_path / "no.env")  # never the developer's .env
    env.update(extra)
    return env


def test_without_a_token_it_explains_how_to_get_one_and_starts_nothing(tmp_path: Path) -> None:
    result = run_bot_sh("start", env=clean_env(tmp_path))
    assert result.returncode == 0  # TorchServe alone is a valid setup
    assert "@BotFather" in result.stderr and "BOT_TOKEN" in result.stderr
    status = run_bot_sh("status", env=clean_env(tmp_path))
    assert status.returncode == 1 and "not running" in status.stdout


def test_a_malformed_token_is_reported_without_echoing_it(tmp_path: Path) -> None:
    result = run_bot_sh("start", env=clean_env(tmp_path, BOT_TOKEN="not-a-token-s3cr3t"))
    assert result.returncode == 0
    assert "does not look like" in result.stderr
    assert "s3cr3t" not in result.stderr + result.stdout
