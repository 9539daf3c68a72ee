"""``python -m msgnet``: stylize in-process (debugging, evaluation), list presets, download the
official weights, and run training/evaluation.

    python -m msgnet stylize CONTENT (--style IMAGE[:W] | --preset NAME[:W])... -o OUT
                     [--size N] [--strength S] [--keep-colors] [--brush small|medium|large]
                     [--weights PATH] [--style-size N] [--max-size N]
                     [--reference first|running|off] [--max-seconds S] [--max-frames N] [--fps F]

CONTENT may be a clip (GIF, animated WebP/APNG, MP4/WebM/MOV): OUT is then a .gif or an
.mp4, with a progress bar over the frames (msgnet/animation/cli.py).
    python -m msgnet sheet CONTENT -o OUT [--size N] [--strength S] [--keep-colors]
    python -m msgnet presets [--weights PATH] [--store DIR]
    python -m msgnet learn STYLE_IMAGE --name NAME [--store DIR] [--photos DIR]
    python -m msgnet forget NAME [--store DIR]

A learned style (msgnet/learning/learn.py) is used like a preset: ``--preset NAME`` looks in the
style store (``$MSGNET_STYLE_STORE``, else ~/.local/share/msgnet/styles) for names the weights do
not ship; ``sheet`` and ``presets`` show them after the built-in ones.
    python -m msgnet download [-o PATH]
    python -m msgnet train ... | python -m msgnet evaluate ...

User errors (bad image, unknown preset, unusable weights, missing file, a control out of range)
print one line to stderr and exit with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Callable
from pathlib import Path

from msgnet.inference.control_values import BRUSHES
from msgnet.learning.cli import add_learn_parser, add_store_argument

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WEIGHTS = REPO_ROOT / "weights" / "msgnet-21styles.pt"
EXIT_USER_ERROR = 2
# subcommands whose modules are imported only when used (they pull in the VGG loss network)
LAZY_COMMANDS = {
    "train": ("msgnet.training.train", "train MSG-Net weights (python -m msgnet train --help)"),
    "evaluate": ("msgnet.training.evaluate", "quality report of a weights file "
                                    "(python -m msgnet evaluate --help)"),
    "train-predictor": ("msgnet.training.predictor", "train the style predictor uploads use "
                                                     "(python -m msgnet train-predictor --help)"),
}


class CliError(Exception):
    """A user-facing error with a ready message."""


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m msgnet",
                                     description="MSG-Net style transfer tools.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("stylize", help="stylize one image in-process",
                       description="Stylize CONTENT with a style image or a shipped preset.")
    s.add_argument("content", metavar="CONTENT", type=Path, help="content image")
    s.add_argument("--style", metavar="IMAGE[:WEIGHT]", action="append", default=[],
                   help="style image; repeat (with --preset too) to mix styles by weight")
    s.add_argument("--preset", metavar="NAME[:WEIGHT]", action="append", default=[],
                   help="preset shipped with the weights; repeatable, e.g. "
                        "--preset candy:0.7 --preset udnie:0.3")
    s.add_argument("-o", "--output", metavar="OUT", type=Path, required=True,
                   help="output image (.png writes PNG, anything else JPEG); for a clip "
                        ".gif or .mp4")
    s.add_argument("--size", type=int, default=None,
                   help="longest side of the output in pixels (default 512; 480 for a clip)")
    s.add_argument("--brush", choices=list(BRUSHES),
                   help="stroke size of --style images: the size they are encoded at "
                        "(small 1.5x, medium 1x, large 0.5x the default style size; 384 / "
                        "256 / 128 px for the shipped weights); not with --style-size")
    s.add_argument("--style-size", type=int, default=None,
                   help="longest side the style image is resized to (default: the size "
                        "the weights' encoder was trained at, 256 for the shipped weights, "
                        "512 for the authors' file)")
    _add_common(s)
    from msgnet.animation.cli import add_clip_arguments

    add_clip_arguments(s)

    sh = sub.add_parser("sheet", help="the photo in every preset on one labelled sheet",
                        description="Stylize CONTENT in every preset of the weights and lay "
                                    "the results out, labelled, on one contact sheet.")
    sh.add_argument("content", metavar="CONTENT", type=Path, help="content image")
    sh.add_argument("-o", "--output", metavar="OUT", type=Path, required=True,
                    help="output image (.png writes PNG, anything else JPEG)")
    sh.add_argument("--size", type=int, default=256,
                    help="longest side of each cell in pixels (default 256, 64 to 512)")
    sh.add_argument("--columns", type=int, default=None, help="cells per row (default: square)")
    sh.add_argument("--no-original", action="store_true",
                    help="leave out the first cell, the photo itself")
    _add_common(sh)

    p = sub.add_parser("presets", help="list the presets shipped with a weights file, then "
                                       "the learned styles")
    p.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS,
                   help=f"weights file (default {_rel(DEFAULT_WEIGHTS)})")
    add_store_argument(p)
    add_learn_parser(sub)

    d = sub.add_parser("download", help="download the authors' 21styles.model")
    d.add_argument("-o", "--output", type=Path, default=None,
                   help="where to save it (default weights/21styles.model)")
    d.add_argument("--url", action="append", help="download from this URL instead (repeatable)")
    d.add_argument("--timeout", type=float, default=30, help="network timeout in seconds")
    d.add_argument("--force", action="store_true", help="download even if the file exists")

    for name, (_, help_text) in LAZY_COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def _add_common(s: argparse.ArgumentParser) -> None:
    """Options ``stylize`` and ``sheet`` share: the controls, weights, device, limits."""
    s.add_argument("--strength", type=float, default=1.0,
                   help="0 keeps the photo, 1 (default) is the full style")
    s.add_argument("--keep-colors", action="store_true",
                   help="keep the photo's colours: the stylized luminance with its chroma")
    s.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS,
                   help="weights file, ours or the official 21styles.model "
                        f"(default {_rel(DEFAULT_WEIGHTS)})")
    s.add_argument("--max-size", type=int, default=2048, help="largest allowed --size")
    s.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    s.add_argument("--quality", type=int, default=92, help="JPEG quality (default 92)")
    add_store_argument(s)


# ---------------------------------------------------------------------------- commands
def _weights_missing(path: Path) -> CliError:
    msg = f"weights file not found: {path}."
    if path.resolve() == DEFAULT_WEIGHTS:
        msg += (" The shipped weights are missing from this checkout: restore them (`git "
                "checkout weights/`), train them with `python -m msgnet train`, or get the "
                "authors' file with `python -m msgnet download` and pass "
                "--weights weights/21styles.model")
    return CliError(msg)


def _load_stylizer(weights: Path, **kw):
    from msgnet.inference.stylize import Stylizer

    if not weights.is_file():
        raise _weights_missing(weights)
    return Stylizer.from_file(weights, **kw)


def _load_image(path: Path, role: str):
    from msgnet.imageio import ImageError, load_image

    if not path.is_file():
        raise CliError(f"{role} image not found: {path}")
    try:
        return load_image(path)
    except ImageError as exc:
        raise type(exc)(f"{role} image {path}: {exc}") from exc


def _controls(args: argparse.Namespace):
    from msgnet.inference.control_values import check_strength
    from msgnet.inference.controls import Controls

    return Controls(strength=check_strength(args.strength, "--strength"),
                    keep_colors=args.keep_colors)


def _write(args: argparse.Namespace, image, started: float) -> None:
    from msgnet.imageio import encode_image

    fmt = "png" if args.output.suffix.lower() == ".png" else "jpeg"
    body, _ = encode_image(image, fmt=fmt, quality=args.quality)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(body)
    elapsed = time.perf_counter() - started
    print(f"{args.output} ({image.width}x{image.height} {fmt}, {elapsed:.2f} s)")


def _weighted_styles(args: argparse.Namespace) -> list[tuple[str, str, float]]:
    """(kind, name or path, weight) for every --preset and --style, in the order given."""
    from msgnet.inference.control_values import parse_weighted

    styles = [("preset", *parse_weighted(spec, "--preset")) for spec in args.preset]
    styles += [("style", *parse_weighted(spec, "--style")) for spec in args.style]
    return styles


def cmd_stylize(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from msgnet.inference.control_values import normalise_weights
    from msgnet.inference.controls import mix_targets
    from msgnet.inference.stylize import MIN_SIZE

    if not args.preset and not args.style:
        parser.error("a style is required: --preset NAME[:WEIGHT] or --style IMAGE[:WEIGHT] "
                     "(repeat them to mix)")
    if args.brush and args.style_size is not None:
        parser.error("--brush sets the style size: use --brush or --style-size, not both")
    if args.max_size < MIN_SIZE:
        parser.error(f"--max-size must be at least {MIN_SIZE}, got {args.max_size}")
    for flag, value, upper in (("--size", args.size, args.max_size),
                               ("--style-size", args.style_size, max(args.max_size, 512))):
        if value is not None and not MIN_SIZE <= value <= upper:
            parser.error(f"{flag} must be between {MIN_SIZE} and {upper}, got {value}")
    controls = _controls(args)
    styles = _weighted_styles(args)
    if args.brush and not args.style:
        raise CliError("--brush sets the size a style image is encoded at, so it needs "
                       "--style IMAGE (a preset is stored as one encoded target)")
    normalise_weights([w for _, _, w in styles], "weight")
    started = time.perf_counter()
    stylizer = _load_stylizer(args.weights, device=args.device, max_size=args.max_size,
                              default_size=min(512, args.max_size),
                              default_style_size=args.style_size)
    style_size = stylizer.default_style_size
    if args.brush:
        style_size = stylizer.brush_style_size(args.brush)
    from msgnet.learning.cli import learned_target, open_store

    store = open_store(args)
    targets = [learned_target(stylizer, store, name)
               for kind, name, _ in styles if kind == "preset"]
    from msgnet.animation.cli import is_clip_file

    clip = is_clip_file(args.content)
    content = None if clip else _load_image(args.content, "content")
    targets += [stylizer.style_target(_load_image(Path(name), "style"), style_size)
                for kind, name, _ in styles if kind == "style"]
    weights = [w for kind, _, w in styles if kind == "preset"]
    weights += [w for kind, _, w in styles if kind == "style"]
    if clip:
        from msgnet.animation.cli import stylize_clip_file

        return stylize_clip_file(args, stylizer, mix_targets(targets, weights), controls,
                                 started)
    result = stylizer.stylize(content, mix_targets(targets, weights), args.size, controls)
    _write(args, result, started)
    return 0


def cmd_sheet(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from msgnet.inference.sheet import contact_sheet

    if args.columns is not None and args.columns < 1:
        parser.error(f"--columns must be at least 1, got {args.columns}")
    controls = _controls(args)
    started = time.perf_counter()
    stylizer = _load_stylizer(args.weights, device=args.device,
                              max_size=max(args.max_size, args.size),
                              default_size=min(256, args.max_size))
    content = _load_image(args.content, "content")
    from msgnet.learning.cli import learned_names, learned_target, open_store

    store = open_store(args)
    learned = learned_names(stylizer, store)[0]
    for name in learned:  # after the built-in presets, under their own names
        stylizer.presets[name] = learned_target(stylizer, store, name)
    sheet = contact_sheet(stylizer, content, size=args.size, controls=controls,
                          presets=[*sorted(set(stylizer.presets) - set(learned)), *learned]
                          if learned else None,
                          include_original=not args.no_original, columns=args.columns)
    _write(args, sheet, started)
    return 0


def cmd_presets(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from msgnet.learning.cli import learned_names, open_store

    stylizer = _load_stylizer(args.weights)
    names = stylizer.preset_names()
    if not names:
        print(f"{args.weights}: these weights ship no presets ({stylizer.layout} layout); "
              "use --style IMAGE", file=sys.stderr)
    print("\n".join(names))
    store = open_store(args)
    usable, stale = learned_names(stylizer, store)
    if usable or stale:
        print(f"\nlearned ({_rel(store.root)}):")
        print("\n".join(usable))
        for name in stale:
            print(f"{name}  (learned with other weights: learn it again)")
    return 0


def cmd_download(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from msgnet.model.download import OFFICIAL_PATH, download_official

    dest = args.output or OFFICIAL_PATH
    if dest.exists() and not args.force:
        print(f"{dest} already exists (use --force to download again)")
        return 0
    path = download_official(dest, urls=tuple(args.url) if args.url else None,
                             timeout=args.timeout)
    print(f"saved {path}; use it with --weights {path}")
    return 0


def cmd_learn(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from msgnet.learning.cli import cmd_learn as learn

    weights = args.weights or DEFAULT_WEIGHTS
    if not weights.is_file():
        raise _weights_missing(weights)
    return learn(args, parser, CliError, _load_image, weights)


def cmd_forget(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from msgnet.learning.cli import cmd_forget as forget

    return forget(args, parser)


COMMANDS: dict[str, Callable[[argparse.Namespace, argparse.ArgumentParser], int]] = {
    "stylize": cmd_stylize, "sheet": cmd_sheet, "presets": cmd_presets,
    "download": cmd_download, "learn": cmd_learn, "forget": cmd_forget}


def _run_lazy(name: str, argv: list[str]) -> int:
    module_name = LAZY_COMMANDS[name][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise CliError(f"`{name}` is not available in this checkout ({module_name} is "
                       "missing)") from exc
    parser = argparse.ArgumentParser(prog=f"python -m msgnet {name}", description=module.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    module.add_arguments(parser)
    return int(module.run(parser.parse_args(argv)) or 0)


def _user_errors() -> tuple[type[BaseException], ...]:
    from msgnet.animation.cli import ClipCliError
    from msgnet.imageio import ImageError
    from msgnet.inference.control_values import ControlError
    from msgnet.inference.sheet import SheetError
    from msgnet.inference.stylize import UnknownPresetError
    from msgnet.learning.style_store import StyleStoreError
    from msgnet.model.checkpoint import CheckpointError
    from msgnet.model.download import DownloadError

    return (CliError, ImageError, UnknownPresetError, CheckpointError, DownloadError,
            ControlError, SheetError, FileNotFoundError, ClipCliError, StyleStoreError)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    user_errors = _user_errors()
    try:
        if argv and argv[0] in LAZY_COMMANDS:
            return _run_lazy(argv[0], argv[1:])
        parser = build_parser()
        args = parser.parse_args(argv)
        return COMMANDS[args.command](args, parser)
    except user_errors as exc:
        print(f"error: {_describe(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _describe(exc: BaseException) -> str:
    if isinstance(exc, FileNotFoundError) and exc.filename:
        return f"file not found: {exc.filename}"
    return str(exc)
