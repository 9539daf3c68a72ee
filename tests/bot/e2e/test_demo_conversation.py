"""workbench/demo_conversation.py against the tests' real TorchServe (tiny weights): it plays
the conversation with the real bot, saves what the bot sent and times it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from bot_helpers import dims

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[3]


def test_demo_conversation_saves_the_bots_images_and_the_median_latency(torchserve, tmp_path):
    out = tmp_path / "demo"
    done = subprocess.run(
        [sys.executable, "-m", "workbench.demo_conversation", "--ts-url",
         torchserve.inference, "--key-file", str(torchserve.key_file), "--runs", "2",
         "--quiet", "-o", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "user: /start" in done.stdout and "bot: Hi, Demo!" in done.stdout
    assert "median time from the user's last upload" in done.stdout

    timings = json.loads((out / "timings.json").read_text())
    assert timings["runs"] == 2 and timings["size"] == 512
    assert 0 < timings["median_style_upload_s"] < 240
    for run in (1, 2):
        for name in ("result_candy", "result_own_style"):
            picture = (out / f"run{run}_{name}.jpg").read_bytes()
            assert picture[:3] == b"\xff\xd8\xff" and dims(picture) == (512, 384)
    full = (out / "run1_full_quality_own_style.jpg").read_bytes()
    assert dims(full) == (512, 384)
    assert dims((out / "run1_gallery_candy.jpg").read_bytes()) == (32, 32)  # the preview
    # the short path as chat screens (workbench/chat_screen.py), the first run only
    screens = sorted(p.name for p in out.glob("run*_screen_*.png"))
    assert screens == ["run1_screen_1_start.png", "run1_screen_2_photo_gallery.png",
                       "run1_screen_3_result.png", "run1_screen_4_own_style.png"]
    for name in screens:
        data = (out / name).read_bytes()
        assert data[:4] == b"\x89PNG" and dims(data)[0] == 480
    assert "123456789:DEMO" not in (out / "bot.log").read_text()
