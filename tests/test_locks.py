"""The lock files the images install from (requirements/*.lock, made by scripts/lock.sh) still
satisfy pyproject.toml, pin everything with hashes, and keep CUDA and torch where they belong.

A failure here after a pyproject.toml change means: run scripts/lock.sh and commit the locks.
"""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCKS = {"serve.lock": ("model", "serve"), "bot.lock": ("bot",)}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", re.M)


def extras() -> dict[str, list[str]]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]


def pins(lock: str) -> dict[str, str]:
    """Normalised name -> pinned version of a lock file."""
    text = (ROOT / "requirements" / lock).read_text(encoding="utf-8")
    return {canonicalize_name(name): version for name, version in PIN.findall(text)}


def torch_version() -> str:
    text = (ROOT / "requirements" / "torch-cpu.txt").read_text(encoding="utf-8")
    return re.search(r"^torch==(\S+)$", text, re.M).group(1)


@pytest.mark.parametrize("lock", LOCKS)
def test_the_lock_satisfies_every_requirement_of_its_extras(lock: str) -> None:
    locked = pins(lock)
    for extra in LOCKS[lock]:
        for line in extras()[extra]:
            req = Requirement(line)
            name = canonicalize_name(req.name)
            if name == "torch":  # installed from the PyTorch index, not from the lock
                continue
            assert name in locked, f"{lock} has no {name} ({extra}): run scripts/lock.sh"
            assert req.specifier.contains(locked[name], prereleases=True), (
                f"{lock} pins {name}=={locked[name]}, pyproject wants {req}: run scripts/lock.sh")


@pytest.mark.parametrize("lock", LOCKS)
def test_every_pin_has_a_hash(lock: str) -> None:
    """pip's hash-checking mode (the images use --require-hashes) needs a hash on every pin,
    and refuses any dependency the lock does not pin: an incomplete lock fails the build."""
    entries: list[list[str]] = []
    for line in (ROOT / "requirements" / lock).read_text(encoding="utf-8").splitlines():
        if PIN.match(line):
            entries.append([line])
        elif entries and line.startswith(" "):
            entries[-1].append(line)
    assert len(entries) == len(pins(lock)) > 5
    for entry in entries:
        assert any("--hash=sha256:" in line for line in entry), entry[0]


def test_serve_lock_leaves_torch_to_its_index_and_has_no_cuda() -> None:
    locked = pins("serve.lock")
    assert "torch" not in locked
    assert not [name for name in locked if name.startswith("nvidia-") or name == "triton"]
    # torch's own dependencies are locked (resolved for the +cpu build)
    assert {"sympy", "networkx", "filelock", "jinja2", "fsspec"} <= set(locked)


def test_bot_lock_has_no_model_stack() -> None:
    locked = pins("bot.lock")
    assert {"aiogram", "pydantic-settings", "redis", "prometheus-client"} <= set(locked)
    assert set(locked).isdisjoint({"torch", "numpy", "pillow", "torchserve", "av"})


def test_pydantic_settings_is_capped_at_the_tested_minor() -> None:
    """bot/config.py hooks pydantic-settings' source internals: the range is closed above,
    and the version this suite runs with (the tested one) is inside it."""
    req = next(Requirement(r) for r in extras()["bot"]
               if canonicalize_name(Requirement(r).name) == "pydantic-settings")
    uppers = [s for s in req.specifier if s.operator in ("<", "<=", "~=", "==")]
    assert uppers, f"{req} is open-ended"
    installed = importlib.metadata.version("pydantic-settings")
    assert req.specifier.contains(installed), f"the tested {installed} is outside {req}"
    assert req.specifier.contains(pins("bot.lock")["pydantic-settings"])


@pytest.mark.parametrize("dockerfile, lock", [("torchserve.Dockerfile", "serve.lock"),
                                              ("bot.Dockerfile", "bot.lock")])
def test_the_images_install_from_the_locks_with_hashes(dockerfile: str, lock: str) -> None:
    text = (ROOT / "docker" / dockerfile).read_text(encoding="utf-8")
    assert f"COPY requirements/{lock} ./" in text
    assert f"--require-hashes -r {lock}" in text
    assert "pyproject" not in "\n".join(ln for ln in text.splitlines()
                                        if not ln.lstrip().startswith("#"))


def test_the_torchserve_image_installs_the_same_torch_version() -> None:
    text = (ROOT / "docker" / "torchserve.Dockerfile").read_text(encoding="utf-8")
    assert re.search(rf"^ARG TORCH_VERSION={re.escape(torch_version())}$", text, re.M)
    # the lock before torch, so torch's dependencies come from the lock
    assert text.index("-r serve.lock") < text.index('"torch==${TORCH_VERSION}"')
