"""Build the TorchServe archive ``model_store/msgnet.mar`` from a weights file.

The archive holds the weights (ours or the authors' ``21styles.model``), model-config.yaml,
the handler, the ``handler`` package and the serving part of ``msgnet`` (the worker imports them
from the extracted archive, which TorchServe puts first on ``sys.path``) and, when the folder
exists, the preset previews ``presets/previews/*.jpg``. ``msgnet.training`` (training and
evaluation) and the command lines (``msgnet/cli.py``, ``msgnet/preview.py``) stay out: the
server never imports them.

    python -m scripts.build_mar --weights weights/21styles.model --version 1.0
    python -m scripts.build_mar --if-stale          # what serve.sh does: rebuild only when needed
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_WEIGHTS = ROOT / "weights" / "msgnet-21styles.pt"
DEFAULT_CONFIG = ROOT / "handler" / "model-config.yaml"
DEFAULT_PREVIEWS = ROOT / "presets" / "previews"
HANDLER = ROOT / "handler" / "msgnet_handler.py"
# the msgnet subpackages the server imports (learning: the server learns styles); not training
MSGNET_SERVED = ("model", "imageio", "inference", "animation", "learning")


class BuildError(RuntimeError):
    """A problem the user can fix; printed without a traceback."""


def default_version() -> str:
    try:
        with open(ROOT / "pyproject.toml", "rb") as f:
            return str(tomllib.load(f)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "1.0"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", type=Path, default=None,
                   help=f"weights file, ours or the official 21styles.model "
                        f"(default: {DEFAULT_WEIGHTS.relative_to(ROOT)})")
    p.add_argument("--version", default=None,
                   help="model version recorded in the archive (default: pyproject version)")
    p.add_argument("--output-dir", type=Path, default=ROOT / "model_store")
    p.add_argument("--model-name", default="msgnet")
    p.add_argument("--archive-name", default=None,
                   help="file name without .mar (default: the model name); a second version "
                        "needs its own file, e.g. msgnet-v2")
    p.add_argument("--model-config", type=Path, default=DEFAULT_CONFIG,
                   help="model-config.yaml: workers, batching, handler limits")
    p.add_argument("--previews", type=Path, default=DEFAULT_PREVIEWS,
                   help="folder of <preset>.jpg previews, packed when it exists")
    p.add_argument("--if-stale", action="store_true",
                   help="do nothing when the archive is newer than all of its inputs")
    p.add_argument("--no-check", action="store_true",
                   help="skip loading the weights before packing them")
    return p.parse_args(argv)


def package_files() -> list[Path]:
    """The Python files the archive ships: ``handler`` and msgnet's serving subpackages."""
    files = [ROOT / "msgnet" / "__init__.py"]
    files += [p for sub in MSGNET_SERVED for p in sorted((ROOT / "msgnet" / sub).glob("*.py"))]
    return files + sorted((ROOT / "handler").glob("*.py"))


def source_files(previews: Path) -> list[Path]:
    files = package_files()
    if previews.is_dir():
        files += sorted(previews.glob("*.jpg"))
    return files


def is_fresh(mar: Path, inputs: list[Path]) -> bool:
    if not mar.is_file():
        return False
    built = mar.stat().st_mtime
    return all(p.stat().st_mtime <= built for p in inputs if p.exists())


def check_weights(path: Path) -> None:
    """Load the weights once here, so a bad file fails the build and not the worker."""
    from msgnet.model.checkpoint import load_weights

    try:
        loaded = load_weights(path)
    except Exception as exc:  # CheckpointError, torch errors: all mean "not usable"
        raise BuildError(f"{path} is not usable MSG-Net weights: {exc}") from exc
    print(f"weights: {path.name} layout={loaded.layout} ngf={loaded.net.ngf} "
          f"presets={sorted(loaded.presets) or 'none'}")


def find_archiver() -> str:
    local = Path(sys.executable).with_name("torch-model-archiver")
    found = str(local) if local.exists() else shutil.which("torch-model-archiver")
    if not found:
        raise BuildError("torch-model-archiver not found: run scripts/setup.sh first")
    return found


def predictor_file(weights: Path) -> Path | None:
    """The style predictor beside the weights (``NAME.predictor.pt``), packed when there."""
    from msgnet.model.predictor import sidecar_path

    side = sidecar_path(weights)
    return side if side.is_file() else None


def stage_extra_files(stage: Path, previews: Path, weights: Path | None = None) -> None:
    """Lay out the folders to pack; torch-model-archiver copies a folder's *contents*. The
    style predictor goes to the archive's top, beside the serialized weights, where
    ``load_weights`` looks for it."""
    side = predictor_file(weights) if weights is not None else None
    if side is not None:
        stage.mkdir(parents=True, exist_ok=True)
        shutil.copy2(side, stage / side.name)
    for src in package_files():
        dst = stage / src.relative_to(ROOT)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
    if previews.is_dir() and any(previews.glob("*.jpg")):
        dst = stage / "presets" / "previews"
        dst.mkdir(parents=True)
        for src in sorted(previews.glob("*.jpg")):
            shutil.copy2(src, dst / src.name)


def build(args: argparse.Namespace) -> Path | None:
    explicit = args.weights is not None
    weights = (args.weights or DEFAULT_WEIGHTS).resolve()
    name = args.archive_name or args.model_name
    mar = (args.output_dir / f"{name}.mar").resolve()
    if not weights.is_file():
        if args.if_stale and not explicit and mar.is_file():
            print(f"{mar.relative_to(ROOT) if mar.is_relative_to(ROOT) else mar} exists and "
                  f"the default weights {DEFAULT_WEIGHTS.relative_to(ROOT)} do not: keeping it")
            return mar
        if explicit:
            raise BuildError(f"weights file not found: {weights}")
        raise BuildError(
            f"default weights {DEFAULT_WEIGHTS.relative_to(ROOT)} not found (our trained "
            "weights have not been produced yet).\n"
            "Pass a weights file explicitly (ours or the authors' 21styles.model):\n"
            "    scripts/run.sh --weights path/to/21styles.model\n"
            "    .venv/bin/python -m scripts.build_mar --weights path/to/21styles.model")
    if not args.model_config.is_file():
        raise BuildError(f"model config not found: {args.model_config}")
    from msgnet.model.predictor import sidecar_path

    # is_fresh skips inputs that do not exist, so the predictor counts only when it is there
    inputs = [weights, args.model_config, *source_files(args.previews), sidecar_path(weights)]
    if args.if_stale and is_fresh(mar, inputs):
        print(f"{mar.name} is up to date")
        return mar
    if not args.no_check:
        check_weights(weights)
    version = args.version or default_version()
    started = time.perf_counter()
    args.output_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="build-mar-") as tmp:
        tmp_path = Path(tmp)
        stage, export, scratch = tmp_path / "extra", tmp_path / "out", tmp_path / "scratch"
        export.mkdir()
        scratch.mkdir()
        stage_extra_files(stage, args.previews, weights)
        cmd = [find_archiver(), "--model-name", args.model_name, "--version", version,
               "--handler", str(HANDLER), "--serialized-file", str(weights),
               "--extra-files", str(stage), "--config-file", str(args.model_config),
               "--export-path", str(export), "--force"]
        # the archiver stages files in $TMPDIR/<model-name> and deletes that folder: give it a
        # private TMPDIR so parallel builds (tests, a second version) cannot collide
        env = {**os.environ, "TMPDIR": str(scratch)}
        result = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise BuildError("torch-model-archiver failed:\n" + result.stdout + result.stderr)
        built = export / f"{args.model_name}.mar"
        partial = mar.with_name(mar.name + ".partial")
        shutil.copyfile(built, partial)
        os.replace(partial, mar)
    size_mb = mar.stat().st_size / 1e6
    print(f"built {mar} (model {args.model_name} version {version}, {size_mb:.1f} MB, "
          f"{time.perf_counter() - started:.1f} s)")
    return mar


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        build(args)
    except BuildError as exc:
        print(f"build_mar: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
