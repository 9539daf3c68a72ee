"""scripts/serve.sh without a usable Java: it fails at once, naming Java, instead of waiting
for a server that never comes (issue 41: TorchServe prints "java not found" to
logs/torchserve.out, exits 0, and the readiness wait used to poll for 180 s).

serve.sh runs from a copy of the checkout with a PATH that has every command of this machine
except ``java`` (plus, per test, a fake ``java`` printing a chosen version), so nothing here
depends on the machine having Java or not.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIMIT_S = 10  # the bound for failing without Java


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A copy of serve.sh in a checkout of its own (no pid file, no .venv)."""
    (tmp_path / "scripts").mkdir()
    shutil.copy2(ROOT / "scripts" / "serve.sh", tmp_path / "scripts" / "serve.sh")
    shutil.copy2(ROOT / "config.properties", tmp_path / "config.properties")
    return tmp_path


@pytest.fixture
def bin_without_java(tmp_path: Path) -> Path:
    """A folder of links to every command on this machine's PATH except java."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for directory in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep):
        if not os.path.isdir(directory) or os.path.realpath(directory).startswith(
                os.path.realpath(tmp_path)):
            continue
        for entry in os.scandir(directory):
            link = folder / entry.name
            if entry.name != "java" and not link.exists() and os.access(entry.path, os.X_OK):
                link.symlink_to(entry.path)
    assert not (folder / "java").exists() and (folder / "bash").exists()
    return folder


def fake_java(folder: Path, version_line: str) -> None:
    """A ``java`` that prints ``version_line`` to stderr, as ``java -version`` does."""
    java = folder / "java"
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    java.chmod(0o755)


def serve(checkout: Path, path: Path, *args: str,
          java_home: str | None = None) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run serve.sh with PATH=``path``; the result and its wall time in seconds."""
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = str(path)
    if java_home is not None:
        env["JAVA_HOME"] = java_home
    t0 = time.monotonic()
    done = subprocess.run(["bash", str(checkout / "scripts" / "serve.sh"), *args], env=env,
                          capture_output=True, text=True, timeout=60)
    return done, time.monotonic() - t0


def test_start_without_java_fails_fast_naming_java(checkout: Path, bin_without_java: Path):
    done, seconds = serve(checkout, bin_without_java, "start")
    assert done.returncode != 0
    assert seconds < LIMIT_S
    assert "Java not found" in done.stderr
    assert "Java 17 or newer" in done.stderr and "openjdk-17" in done.stderr
    assert not (checkout / "logs").exists()  # it never got to starting TorchServe


@pytest.mark.parametrize("line", ['java version "1.8.0_392"',
                                  'openjdk version "11.0.22" 2024-01-16'])
def test_start_refuses_a_java_older_than_17(checkout: Path, bin_without_java: Path, line: str):
    fake_java(bin_without_java, line)
    done, seconds = serve(checkout, bin_without_java, "start")
    assert done.returncode != 0 and seconds < LIMIT_S
    version = line.split('"')[1]
    assert f"is Java {version}; TorchServe needs Java 17 or newer" in done.stderr


@pytest.mark.parametrize("line", ['openjdk version "17.0.15" 2025-04-15',
                                  'openjdk version "21" 2023-09-19',
                                  'java version "25.0.1" 2025-10-21 LTS'])
def test_check_java_accepts_17_and_newer(checkout: Path, bin_without_java: Path, line: str):
    fake_java(bin_without_java, line)
    done, _ = serve(checkout, bin_without_java, "check-java")
    assert done.returncode == 0, done.stderr
    assert "Java is there" in done.stdout


def test_check_java_follows_java_home_as_torchserve_does(checkout: Path,
                                                         bin_without_java: Path,
                                                         tmp_path: Path):
    """TorchServe runs $JAVA_HOME/bin/java when JAVA_HOME is set, whatever PATH has."""
    fake_java(bin_without_java, 'openjdk version "17.0.15"')
    done, _ = serve(checkout, bin_without_java, "check-java", java_home=str(tmp_path / "nojdk"))
    assert done.returncode != 0
    assert "JAVA_HOME" in done.stderr and "no bin/java" in done.stderr
    jdk = tmp_path / "jdk" / "bin"
    jdk.mkdir(parents=True)
    fake_java(jdk, 'openjdk version "17.0.2"')
    done, _ = serve(checkout, bin_without_java, "check-java", java_home=str(jdk.parent))
    assert done.returncode == 0, done.stderr


def test_unreadable_java_version_is_refused(checkout: Path, bin_without_java: Path):
    fake_java(bin_without_java, "Segmentation fault")
    done, _ = serve(checkout, bin_without_java, "check-java")
    assert done.returncode != 0
    assert "could not read the Java version" in done.stderr


FAKE_TOOL = """#!/bin/sh
# a fake .venv/bin/{name}: {what}
{body}
"""


def test_a_frontend_that_never_starts_shows_torchserve_out(checkout: Path,
                                                           bin_without_java: Path):
    """Java passes the check, but the frontend does not come up (here: a torchserve that
    prints TorchServe's own "java not found" and exits 0, as it does): serve.sh says so at
    once and shows logs/torchserve.out, which holds the cause, not only ts_log.log."""
    fake_java(bin_without_java, 'openjdk version "17.0.15"')
    venv = checkout / ".venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "python").write_text(FAKE_TOOL.format(
        name="python", what="every build/anchor step succeeds", body="exit 0"))
    (venv / "torchserve").write_text(FAKE_TOOL.format(
        name="torchserve", what="TorchServe 0.12 when Popen(java) raises ENOENT",
        body='echo "java not found, please make sure JAVA_HOME is set properly."'))
    for tool in venv.iterdir():
        tool.chmod(0o755)
    (checkout / "logs").mkdir()
    (checkout / "logs" / "torchserve.out").write_text("an older start's output\n")
    (checkout / "logs" / "ts_log.log").write_text("ts_log line\n")
    done, seconds = serve(checkout, bin_without_java, "start")
    assert done.returncode != 0 and seconds < LIMIT_S
    assert "TorchServe exited right after its start" in done.stderr
    out_section = done.stderr.split("--- logs/torchserve.out (this start) ---", 1)[1]
    assert "java not found" in out_section
    assert "an older start's output" not in done.stderr  # only this start's lines
    assert "ts_log line" in done.stderr


def test_run_sh_checks_java_before_installing_anything(checkout: Path, bin_without_java: Path):
    """run.sh asks serve.sh about Java before setup.sh, so no install runs without Java."""
    shutil.copy2(ROOT / "scripts" / "run.sh", checkout / "scripts" / "run.sh")
    setup = checkout / "scripts" / "setup.sh"
    setup.write_text("#!/bin/sh\necho setup.sh ran >&2\n")
    setup.chmod(0o755)
    t0 = time.monotonic()
    done = subprocess.run(["bash", str(checkout / "scripts" / "run.sh")],
                          env={**{k: v for k, v in os.environ.items() if k != "JAVA_HOME"},
                               "PATH": str(bin_without_java)},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and time.monotonic() - t0 < LIMIT_S
    assert "Java not found" in done.stderr
    assert "setup.sh ran" not in done.stderr
