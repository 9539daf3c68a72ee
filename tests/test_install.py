"""What scripts/setup.sh installs, and what pip resolves torch to.

PyPI's torch wheel for Linux is the CUDA build (it requires a dozen ``nvidia-*`` wheels, several
GB), so setup.sh installs torch from PyTorch's CPU index (requirements/torch-cpu.txt) unless the
pip configuration already offers a ``+cpu`` wheel (this machine's does: a local wheel folder).
The resolution tests run pip itself with ``--dry-run --report``; the ones that need an index
skip, saying which, when it cannot be reached. The setup.sh tests run the real script against a
fake ``.venv/bin/python`` that records the pip commands instead of installing anything.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TORCH_REQ = ROOT / "requirements" / "torch-cpu.txt"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
# the platform the images and an ordinary Linux host install for
LINUX_311 = ["--only-binary=:all:", "--platform", "manylinux_2_28_x86_64",
             "--python-version", "3.11", "--implementation", "cp"]


def torch_version() -> str:
    """The torch version requirements/torch-cpu.txt installs."""
    match = re.search(r"^torch==(\S+)$", TORCH_REQ.read_text(encoding="utf-8"), re.M)
    assert match, f"no torch== line in {TORCH_REQ}"
    return match.group(1)


def pip_env(local_config: bool) -> dict[str, str]:
    """The environment for a pip run: with this machine's pip configuration, or with none.

    ``PIP_CONFIG_FILE=/dev/null`` makes pip read no configuration file; the ``PIP_*`` variables
    (this machine sets ``PIP_FIND_LINKS``) are configuration too, so they go as well.
    """
    env = dict(os.environ)
    if not local_config:
        env = {k: v for k, v in env.items() if not k.startswith("PIP_")}
        env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_NO_CACHE_DIR"] = "1"  # never write to the user's cache from a test
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


def pip_dry_run(args: list[str], *, local_config: bool) -> subprocess.CompletedProcess[str]:
    """``pip install --dry-run --report -`` (the report is JSON on stdout)."""
    return subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
         "--report", "-", "--retries", "1", "--timeout", "30", *args],
        env=pip_env(local_config), capture_output=True, text=True, timeout=240, cwd=ROOT)


def installs(report: str) -> dict[str, dict]:
    """Distribution name (normalised) -> its entry in a pip installation report."""
    data = json.loads(report)
    return {re.sub(r"[-_.]+", "-", item["metadata"]["name"]).lower(): item
            for item in data["install"]}


def cuda_parts(items: dict[str, dict]) -> list[str]:
    """What in a resolution belongs to a CUDA build: nvidia-* or triton wheels, a +cu label,
    or a torch whose metadata requires nvidia-* packages."""
    found = [name for name in items if name.startswith("nvidia-") or name == "triton"]
    torch = items.get("torch")
    if torch:
        if "+cu" in torch["metadata"]["version"]:
            found.append(f"torch {torch['metadata']['version']}")
        found += [req for req in torch["metadata"].get("requires_dist", [])
                  if req.lower().startswith("nvidia-")]
    return found


def reachable(url: str) -> str | None:
    """None when ``url`` answers, else why not (for the skip reason)."""
    try:
        with urllib.request.urlopen(url, timeout=10):
            return None
    except (urllib.error.URLError, OSError) as exc:
        return str(getattr(exc, "reason", exc))


def test_the_torch_requirement_is_the_cpu_index_and_pyproject_pin() -> None:
    """requirements/torch-cpu.txt installs from the CPU index the version pyproject pins."""
    text = TORCH_REQ.read_text(encoding="utf-8")
    assert f"--index-url {CPU_INDEX}" in text.splitlines()
    model = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["model"]
    assert f"torch=={torch_version()}" in model


@pytest.mark.slow
def test_the_cpu_index_resolves_a_cpu_torch_without_nvidia_wheels() -> None:
    """With no local pip configuration, requirements/torch-cpu.txt (what setup.sh installs on
    an ordinary machine) resolves, for Linux x86_64 / CPython 3.11, to torch X+cpu, with no
    nvidia-* or triton wheel and no CUDA requirement in torch's metadata."""
    why = reachable(f"{CPU_INDEX}/torch/")
    if why:
        pytest.skip(f"the PyTorch CPU index {CPU_INDEX} is unreachable from here ({why})")
    result = pip_dry_run([*LINUX_311, "-r", str(TORCH_REQ)], local_config=False)
    assert result.returncode == 0, result.stderr[-3000:]
    items = installs(result.stdout)
    assert items["torch"]["metadata"]["version"] == f"{torch_version()}+cpu"
    assert cuda_parts(items) == []


@pytest.mark.slow
def test_pypi_alone_would_give_the_cuda_build() -> None:
    """The reason for the CPU index, and a check that cuda_parts sees a CUDA build: PyPI's
    torch of the same version, for Linux, requires nvidia-* wheels."""
    why = reachable("https://pypi.org/simple/torch/")
    if why:
        pytest.skip(f"PyPI is unreachable from here ({why})")
    result = pip_dry_run([*LINUX_311, "--no-deps", f"torch=={torch_version()}"],
                         local_config=False)
    assert result.returncode == 0, result.stderr[-3000:]
    parts = cuda_parts(installs(result.stdout))
    assert any(part.startswith("nvidia-cudnn") for part in parts), parts


@pytest.mark.slow
def test_the_local_pip_configuration_offers_a_cpu_torch_without_the_pytorch_index() -> None:
    """setup.sh's first try, ``pip install torch==X+cpu`` with the machine's own pip
    configuration: where that configuration has a +cpu wheel (here a local wheel folder) it
    resolves without the PyTorch index, to a CPU build."""
    result = pip_dry_run([f"torch=={torch_version()}+cpu"], local_config=True)
    if result.returncode != 0 and "No matching distribution found for torch" in result.stderr:
        pytest.skip("this machine's pip configuration offers no +cpu torch wheel "
                    "(setup.sh falls back to the PyTorch CPU index)")
    assert result.returncode == 0, result.stderr[-3000:]
    items = installs(result.stdout)
    torch = items["torch"]
    assert torch["metadata"]["version"] == f"{torch_version()}+cpu"
    assert "download.pytorch.org" not in torch["download_info"]["url"]
    assert cuda_parts(items) == []


# --- scripts/setup.sh against a fake .venv/bin/python -------------------------------------

FAKE_PYTHON = """#!/usr/bin/env bash
# records every call; answers the installed-torch query from $FAKE_TORCH; the +cpu install
# succeeds only when $FAKE_LOCAL_CPU is 1 (a local wheel folder in the pip configuration)
echo "$*" >> "$FAKE_LOG"
if [ "$1" = -c ]; then
  [ -n "${FAKE_TORCH:-}" ] || exit 1
  echo "$FAKE_TORCH"; exit 0
fi
case "$*" in *"torch=="*"+cpu"*) [ "${FAKE_LOCAL_CPU:-0}" = 1 ] || exit 1 ;; esac
exit 0
"""


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of what setup.sh reads, with a fake .venv whose python logs pip calls."""
    for rel in ("scripts/setup.sh", "pyproject.toml", "requirements/torch-cpu.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, tmp_path / rel)
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(FAKE_PYTHON)
    python.chmod(0o755)
    return tmp_path


def run_setup(checkout: Path, *args: str, **env: str) -> list[str]:
    """Run setup.sh in the copy; the pip commands it ran (the fake python's log)."""
    log = checkout / "pip.log"
    log.write_text("")
    result = subprocess.run(["bash", str(checkout / "scripts" / "setup.sh"), *args],
                            env={**os.environ, "FAKE_LOG": str(log), **env},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [line for line in log.read_text().splitlines() if line.startswith("-m pip")]


def test_setup_installs_only_the_extras_asked_for(checkout: Path) -> None:
    calls = run_setup(checkout, "model,serve,bot")
    assert calls[-1] == "-m pip install -q -e .[bot,model,serve]"
    assert not any("dev" in call for call in calls)


def test_setup_installs_torch_from_a_local_cpu_wheel_without_the_pytorch_index(
        checkout: Path) -> None:
    calls = run_setup(checkout, "model,serve,bot", FAKE_LOCAL_CPU="1")
    version = torch_version()
    assert f"-m pip install -q torch=={version}+cpu" in calls
    assert not any("torch-cpu.txt" in call for call in calls)


def test_setup_falls_back_to_the_pytorch_cpu_index(checkout: Path) -> None:
    calls = run_setup(checkout, "model,serve,bot", FAKE_LOCAL_CPU="0")
    first = calls.index(f"-m pip install -q torch=={torch_version()}+cpu")
    assert calls[first + 1] == "-m pip install -q -r requirements/torch-cpu.txt"
    # torch before the project: the project's torch==X is then already satisfied by X+cpu
    assert calls.index("-m pip install -q -e .[bot,model,serve]") > first + 1


def test_setup_keeps_an_installed_torch_of_the_right_version(checkout: Path) -> None:
    calls = run_setup(checkout, "model", FAKE_TORCH=f"{torch_version()}+cu128")
    assert not any("torch" in call for call in calls)


def test_setup_takes_another_torch_index_when_asked(checkout: Path) -> None:
    url = "https://download.pytorch.org/whl/cu128"
    calls = run_setup(checkout, "model", TORCH_INDEX_URL=url)
    assert f"-m pip install -q --index-url {url} torch=={torch_version()}" in calls
    assert not any("+cpu" in call for call in calls)


def test_setup_installs_no_torch_for_the_bot_alone(checkout: Path) -> None:
    calls = run_setup(checkout, "bot")
    assert not any("torch" in call for call in calls)
    assert calls[-1] == "-m pip install -q -e .[bot]"


def test_setup_is_safe_to_rerun_per_extras_set(checkout: Path) -> None:
    """run.sh (serving extras), then test.sh (adds dev), then run.sh again: the second call
    installs dev, the third nothing; a changed pyproject.toml installs again."""
    assert run_setup(checkout, "model,serve,bot")
    assert run_setup(checkout, "model,serve,bot") == []
    assert run_setup(checkout, "model,serve,bot,dev")[-1] == (
        "-m pip install -q -e .[bot,dev,model,serve]")
    assert run_setup(checkout, "serve,model,bot") == []
    assert run_setup(checkout, "dev") == []
    with open(checkout / "pyproject.toml", "a") as f:
        f.write("\n# changed\n")
    assert run_setup(checkout, "bot,model,serve")[-1] == "-m pip install -q -e .[bot,model,serve]"
    stamps = sorted(p.name for p in (checkout / ".venv").glob(".installed-*"))
    assert len(stamps) == 1 and stamps[0].endswith("-bot,model,serve")


def test_setup_refuses_a_malformed_extras_list(checkout: Path) -> None:
    result = subprocess.run(["bash", str(checkout / "scripts" / "setup.sh"), "model;rm"],
                            capture_output=True, text=True, timeout=30,
                            env={**os.environ, "FAKE_LOG": str(checkout / "pip.log")})
    assert result.returncode == 2
    assert "comma-separated" in result.stderr


def test_serving_installs_no_dev_tools_and_the_tests_do() -> None:
    """run.sh asks setup.sh for the serving extras only; test.sh for dev as well."""
    run = (ROOT / "scripts" / "run.sh").read_text()
    test = (ROOT / "scripts" / "test.sh").read_text()
    assert re.search(r"^scripts/setup\.sh model,serve,bot\b(?!,)", run, re.M)
    assert re.search(r"^scripts/setup\.sh model,serve,bot,dev\b", test, re.M)
