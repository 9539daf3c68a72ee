"""``python -m msgnet``: end to end in a subprocess (the real entry point), details in-process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from weights_factory import official_layout_state_dict

from msgnet import cli
from msgnet.imageio import load_image

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("torch_single_thread")


def run_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "msgnet", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory, rng_image) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli")
    paths = {"content": root / "content.jpg", "style": root / "style.png",
             "pdf": root / "document.jpg"}
    rng_image(60, 40, seed=1).save(paths["content"], quality=95)
    rng_image(32, 32, seed=2).save(paths["style"])
    paths["pdf"].write_bytes(b"%PDF-1.4\n% not a photo\n")
    return paths


# ---------------------------------------------------------------------------- subprocess
def test_stylize_with_a_style_image(tiny_weights_path: Path, images, tmp_path: Path) -> None:
    out = tmp_path / "sub" / "out.jpg"
    result = run_cli("stylize", images["content"], "--style", images["style"], "-o", out,
                     "--size", "48", "--style-size", "32", "--weights", tiny_weights_path)
    assert result.returncode == 0, result.stderr
    assert str(out) in result.stdout
    assert out.read_bytes()[:2] == b"\xff\xd8"
    assert load_image(out).size == (48, 32)  # 60x40 content at longest side 48


def test_stylize_with_a_preset_writes_png(tiny_weights_path: Path, images,
                                          tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    result = run_cli("stylize", images["content"], "--preset", "mosaic", "-o", out,
                     "--size", "40", "--weights", tiny_weights_path)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert load_image(out).size == (40, 27)


def test_unknown_preset_exits_2_with_the_list(tiny_weights_path: Path, images,
                                              tmp_path: Path) -> None:
    result = run_cli("stylize", images["content"], "--preset", "nope", "-o",
                     tmp_path / "o.jpg", "--weights", tiny_weights_path)
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: unknown preset 'nope'; available: candy, mosaic, "
                                     "udnie")
    assert not (tmp_path / "o.jpg").exists()


def test_not_an_image_exits_2_without_traceback(tiny_weights_path: Path, images,
                                                tmp_path: Path) -> None:
    result = run_cli("stylize", images["pdf"], "--preset", "candy", "-o", tmp_path / "o.jpg",
                     "--weights", tiny_weights_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert f"content image {images['pdf']}: The file is not an image (PDF document)" \
        in result.stderr


# ---------------------------------------------------------------------------- in-process
def test_official_weights_file_is_accepted(images, tmp_path: Path, capsys) -> None:
    weights = tmp_path / "21styles.model"
    torch.save(official_layout_state_dict(8), weights)
    out = tmp_path / "out.jpg"
    code = cli.main(["stylize", str(images["content"]), "--style", str(images["style"]),
                     "-o", str(out), "--size", "32", "--weights", str(weights)])
    assert code == 0 and load_image(out).size == (32, 21)
    assert cli.main(["stylize", str(images["content"]), "--preset", "candy", "-o", str(out),
                     "--weights", str(weights)]) == 2
    assert "ship no presets" in capsys.readouterr().err


def test_missing_default_weights_explain_how_to_get_them(monkeypatch, images, tmp_path: Path,
                                                         capsys) -> None:
    missing = tmp_path / "weights" / "msgnet-21styles.pt"
    monkeypatch.setattr(cli, "DEFAULT_WEIGHTS", missing)
    code = cli.main(["stylize", str(images["content"]), "--preset", "candy", "-o",
                     str(tmp_path / "o.jpg")])
    err = capsys.readouterr().err
    assert code == 2
    assert f"weights file not found: {missing}" in err
    assert "python -m msgnet download" in err and "--weights" in err


def test_default_weights_path_is_in_the_repository() -> None:
    assert cli.DEFAULT_WEIGHTS == ROOT / "weights" / "msgnet-21styles.pt"


@pytest.mark.parametrize("make_bad,expected", [
    (lambda p: p.write_bytes(b"garbage"), "cannot read weights file"),
    (lambda p: torch.save({"fc.weight": torch.zeros(1)}, p), "not an MSG-Net state dict"),
])
def test_unusable_weights_exit_2(make_bad, expected: str, images, tmp_path: Path,
                                 capsys) -> None:
    weights = tmp_path / "bad.pt"
    make_bad(weights)
    code = cli.main(["stylize", str(images["content"]), "--preset", "candy", "-o",
                     str(tmp_path / "o.jpg"), "--weights", str(weights)])
    assert code == 2 and expected in capsys.readouterr().err


def test_missing_content_and_bad_style(tiny_weights_path: Path, images, tmp_path: Path,
                                       capsys) -> None:
    base = ["-o", str(tmp_path / "o.jpg"), "--weights", str(tiny_weights_path)]
    assert cli.main(["stylize", str(tmp_path / "nope.jpg"), "--preset", "candy", *base]) == 2
    assert "content image not found" in capsys.readouterr().err
    assert cli.main(["stylize", str(images["content"]), "--style", str(images["pdf"]),
                     *base]) == 2
    assert "style image" in capsys.readouterr().err


@pytest.mark.parametrize("argv,message", [
    ([], "a style is required: --preset NAME[:WEIGHT] or --style IMAGE[:WEIGHT]"),
    (["--preset", "candy", "--brush", "large", "--style-size", "256"],
     "use --brush or --style-size, not both"),
    (["--preset", "candy", "--brush", "huge"], "invalid choice: 'huge'"),
    (["--preset", "candy", "--strength", "half"], "invalid float value: 'half'"),
    (["--preset", "candy", "--size", "4096"], "--size must be between 16 and 2048"),
    (["--preset", "candy", "--size", "8"], "--size must be between 16 and 2048"),
])
def test_argument_errors_exit_2(argv: list[str], message: str, tiny_weights_path: Path,
                                tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["stylize", "c.jpg", "-o", str(tmp_path / "o.jpg"), "--weights",
                  str(tiny_weights_path), *argv])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_presets_lists_names(tiny_weights_path: Path, tmp_path: Path, capsys) -> None:
    assert cli.main(["presets", "--weights", str(tiny_weights_path)]) == 0
    assert capsys.readouterr().out.split() == ["candy", "mosaic", "udnie"]
    official = tmp_path / "official.model"
    torch.save(official_layout_state_dict(8), official)
    assert cli.main(["presets", "--weights", str(official)]) == 0
    assert "ship no presets" in capsys.readouterr().err


def test_download_command(tiny_weights_path: Path, tmp_path: Path, capsys) -> None:
    dest = tmp_path / "w" / "21styles.model"
    argv = ["download", "-o", str(dest), "--url", tiny_weights_path.as_uri()]
    assert cli.main(argv) == 0
    assert dest.read_bytes() == tiny_weights_path.read_bytes()
    assert cli.main(argv) == 0 and "already exists" in capsys.readouterr().out
    code = cli.main(["download", "-o", str(tmp_path / "x.model"), "--timeout", "5",
                     "--url", f"http://127.0.0.1:{closed_port()}/21styles.model"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot reach" in err and "--weights PATH" in err


def closed_port() -> int:
    """A local port with nothing listening on it (connection refused, like being offline)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_lazy_subcommands_build_their_own_parsers(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        cli.main(["train", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "python -m msgnet train" in out and "--content-dir" in out


def test_lazy_subcommand_whose_module_is_missing(monkeypatch, capsys) -> None:
    monkeypatch.setitem(cli.LAZY_COMMANDS, "evaluate", ("msgnet.not_written_yet", "later"))
    assert cli.main(["evaluate", "--weights", "x"]) == 2
    assert "not available" in capsys.readouterr().err


def test_help_lists_every_command(capsys) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for name in ("stylize", "presets", "download", "train", "evaluate"):
        assert name in out


# ---------------------------------------------------------------------------- style controls
def test_controls_in_a_subprocess(tiny_weights_path: Path, images, tmp_path: Path) -> None:
    out = tmp_path / "mixed.png"
    result = run_cli("stylize", images["content"], "--preset", "candy:0.7", "--preset",
                     "udnie:0.3", "--style", f"{images['style']}:0.5", "--strength", "0.5",
                     "--keep-colors", "--brush", "large", "-o", out, "--size", "48",
                     "--weights", tiny_weights_path)
    assert result.returncode == 0, result.stderr
    assert load_image(out).size == (48, 32)


def test_strength_zero_gives_the_photo_back(tiny_weights_path: Path, images,
                                            tmp_path: Path) -> None:
    out = tmp_path / "zero.png"
    assert cli.main(["stylize", str(images["content"]), "--preset", "mosaic", "--strength",
                     "0", "-o", str(out), "--size", "60", "--weights",
                     str(tiny_weights_path)]) == 0
    photo = np.asarray(load_image(images["content"]), dtype=np.int16)
    assert np.abs(np.asarray(load_image(out), dtype=np.int16) - photo).max() <= 1


def test_a_preset_with_weight_one_equals_the_plain_preset(tiny_weights_path: Path, images,
                                                          tmp_path: Path) -> None:
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    base = ["--size", "40", "--weights", str(tiny_weights_path)]
    assert cli.main(["stylize", str(images["content"]), "--preset", "udnie", "-o", str(a),
                     *base]) == 0
    assert cli.main(["stylize", str(images["content"]), "--preset", "udnie:1", "-o", str(b),
                     *base]) == 0
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize("argv,message", [
    (["--preset", "candy", "--strength", "1.5"], "error: --strength must be from 0 to 1, got 1.5"),
    (["--preset", "candy:-1"], "error: --preset weight must be a number >= 0, got '-1'"),
    (["--preset", "candy:0", "--preset", "udnie:0"], "error: style weights must not all be zero"),
    (["--preset", "candy", "--brush", "small"], "error: --brush sets the size a style image is "
                                                 "encoded at, so it needs --style IMAGE"),
    (["--preset", "candy", "--preset", "nope:2"], "error: unknown preset 'nope'"),
])
def test_control_errors_are_one_line_exit_2(argv: list[str], message: str, images,
                                            tiny_weights_path: Path, tmp_path: Path,
                                            capsys) -> None:
    code = cli.main(["stylize", str(images["content"]), "-o", str(tmp_path / "o.jpg"),
                     "--weights", str(tiny_weights_path), *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o.jpg").exists()


def test_sheet_command(tiny_weights_path: Path, images, tmp_path: Path, capsys) -> None:
    out = tmp_path / "sheet.jpg"
    assert cli.main(["sheet", str(images["content"]), "-o", str(out), "--size", "64",
                     "--columns", "4", "--strength", "0.75", "--keep-colors", "--weights",
                     str(tiny_weights_path)]) == 0
    assert str(out) in capsys.readouterr().out
    # the photo and 3 presets, 64x43 cells in one row: 6 px gutters, 22 px labels
    assert load_image(out).size == (4 * 70 + 6, 43 + 22 + 12)
    assert cli.main(["sheet", str(images["content"]), "-o", str(out), "--size", "8",
                     "--weights", str(tiny_weights_path)]) == 2
    assert "sheet cell size must be an integer from 64 to 512" in capsys.readouterr().err
