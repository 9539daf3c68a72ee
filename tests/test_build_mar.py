"""scripts/build_mar: the archive ships what the server imports, and no training code."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from scripts import build_mar

ROOT = Path(__file__).resolve().parents[1]
NOT_SERVED = ("msgnet/training/", "msgnet/cli.py", "msgnet/__main__.py", "msgnet/preview.py")


def _rel(paths: list[Path]) -> list[str]:
    return [p.relative_to(ROOT).as_posix() for p in paths]


def test_package_files_are_the_serving_subpackages_only():
    files = _rel(build_mar.package_files())
    assert "msgnet/__init__.py" in files and "handler/msgnet_handler.py" in files
    for sub in build_mar.MSGNET_SERVED:
        assert f"msgnet/{sub}/__init__.py" in files
    assert "msgnet/learning/vgg.py" in files  # the server learns styles on the loss network
    assert not [f for f in files if f.startswith(NOT_SERVED)]
    # every msgnet module outside the archive is training or a command line
    every = _rel(sorted((ROOT / "msgnet").rglob("*.py")))
    assert sorted(set(every) - set(files)) == sorted(
        f for f in every if f.startswith(NOT_SERVED))


@pytest.mark.integration
def test_archive_lists_no_training_code_and_its_handler_imports(tiny_weights_path, tmp_path):
    """``unzip -l msgnet.mar`` shows no training module, and the handler and the learning
    code import from the extracted archive alone (not from this checkout)."""
    out = tmp_path / "store"
    assert build_mar.main(["--weights", str(tiny_weights_path), "--output-dir", str(out),
                           "--previews", str(tmp_path / "none"), "--no-check"]) == 0
    with zipfile.ZipFile(out / "msgnet.mar") as mar:
        names = mar.namelist()
        mar.extractall(tmp_path / "x")
    assert "msgnet/inference/stylize.py" in names and "handler/learning.py" in names
    assert [n for n in names if n.startswith(NOT_SERVED)] == []
    code = ("import sys, msgnet, handler.msgnet_handler, msgnet.learning.learn, "
            "msgnet.learning.vgg, msgnet.animation.stylize; "
            "assert msgnet.__file__.startswith(sys.argv[1]), msgnet.__file__; "
            "assert not any(m.startswith('msgnet.training') for m in sys.modules)")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "x")], cwd=tmp_path / "x",
                   check=True, timeout=120)


def test_the_style_predictor_is_staged_beside_the_weights(tmp_path):
    """``NAME.predictor.pt`` beside the weights goes to the archive's top, where the handler's
    ``load_weights`` finds it next to the serialized file; without one nothing is added."""
    weights = tmp_path / "w" / "msgnet-x.pt"
    weights.parent.mkdir()
    weights.write_bytes(b"weights")
    stage = tmp_path / "stage"
    build_mar.stage_extra_files(stage, tmp_path / "none", weights)
    assert not (stage / "msgnet-x.predictor.pt").exists()
    (weights.parent / "msgnet-x.predictor.pt").write_bytes(b"predictor")
    stage2 = tmp_path / "stage2"
    build_mar.stage_extra_files(stage2, tmp_path / "none", weights)
    assert (stage2 / "msgnet-x.predictor.pt").read_bytes() == b"predictor"
