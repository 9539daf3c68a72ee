"""``python -m msgnet stylize CLIP``: a GIF or video in, a .gif / .mp4 out (issue 14)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fakes import clips as cs
from msgnet import cli
from msgnet.animation.decode import open_clip

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("torch_single_thread")


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("clips")
    paths = {"mp4": root / "clip.mp4", "gif": root / "clip.gif"}
    paths["mp4"].write_bytes(cs.video(6, fps=6, width=48, height=32, audio="aac"))
    paths["gif"].write_bytes(cs.animation("GIF", 4, 48, 32, durations=[80, 120, 80, 120]))
    return paths


def test_a_video_becomes_an_mp4_with_progress(tiny_weights_path: Path, clips,
                                              tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-m", "msgnet", "stylize", str(clips["mp4"]),
                             "--preset", "candy", "-o", str(out), "--size", "48",
                             "--weights", str(tiny_weights_path)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "6 frames" in result.stdout and "audio kept (aac)" in result.stdout
    assert "6/6" in result.stderr  # the progress bar
    info = open_clip(out.read_bytes()).info
    assert (info.codec, info.width, info.height, info.frames) == ("h264", 48, 32, 6)


def test_a_gif_becomes_a_gif_and_controls_apply(tiny_weights_path: Path, clips,
                                                tmp_path: Path, capsys) -> None:
    out = tmp_path / "out.gif"
    code = cli.main(["stylize", str(clips["gif"]), "--preset", "candy", "--strength", "0.5",
                     "--keep-colors", "--reference", "running", "-o", str(out),
                     "--weights", str(tiny_weights_path), "--size", "48"])
    assert code == 0, capsys.readouterr().err
    info = open_clip(out.read_bytes()).info
    assert info.durations_ms == (80, 120, 80, 120) and (info.width, info.height) == (48, 32)


@pytest.mark.parametrize(("extra", "message"), [
    (["-o", "x.jpg"], "write it to a .gif or an .mp4, not x.jpg"),
    (["-o", "x.gif", "--max-frames", "3"], "the limit is 3"),
    (["-o", "x.gif", "--max-seconds", "0.2"], "the limit is 0.2 s"),
    (["-o", "x.gif", "--fps", "0"], "max_fps must be positive"),
])
def test_clip_errors_are_one_line(tiny_weights_path: Path, clips, tmp_path: Path, capsys,
                                  extra: list[str], message: str) -> None:
    extra = [str(tmp_path / a) if a.startswith("x.") else a for a in extra]
    code = cli.main(["stylize", str(clips["gif"]), "--preset", "candy",
                     "--weights", str(tiny_weights_path), *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
