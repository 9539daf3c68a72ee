"""The style-control strips of docs/controls.md, rendered from a weights file into docs/img/.

    .venv/bin/python -m workbench.controls_figure --weights weights/msgnet-21styles.pt \\
        --content ../shared/data/content/bsds500/val_101085.jpg

Writes ``controls_strength.jpg`` (strength 0 / 0.25 / 0.5 / 1), ``controls_colors.jpg`` (the
photo, the style, the style with the photo's colours), ``controls_mix.jpg`` (two presets and
their 50/50 mix) and ``controls_sheet.jpg`` (the contact sheet). Without ``--content`` the
photo is the project's own procedural landscape (:func:`msgnet.preview.demo_scene`), so the
script runs on a fresh clone; re-run it whenever the weights change. Every picture goes
through :meth:`msgnet.inference.stylize.Stylizer.run`, as the server's answers do.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from msgnet.imageio import bgr_to_image, encode_image, load_image
from msgnet.inference.controls import Controls, mix_targets
from msgnet.inference.sheet import compose, contact_sheet
from msgnet.inference.stylize import Stylizer

ROOT = Path(__file__).resolve().parents[1]


def strip(stylizer: Stylizer, content: torch.Tensor, cells: list[tuple[str, torch.Tensor,
                                                                       Controls]]):
    """One labelled row: each (label, target, controls) applied to ``content``."""
    outs = stylizer.run([content] * len(cells), [t for _, t, _ in cells],
                        [c for _, _, c in cells])
    return compose([bgr_to_image(o) for o in outs], [label for label, _, _ in cells],
                   columns=len(cells))


def save(image, path: Path, quality: int = 88) -> None:
    body, _ = encode_image(image, fmt="jpeg", quality=quality)
    path.write_bytes(body)
    print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} "
          f"{image.width}x{image.height}, {len(body) // 1024} KiB")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", type=Path, default=ROOT / "weights" / "msgnet-21styles.pt")
    p.add_argument("--content", type=Path, default=None,
                   help="photo (default: the procedural landscape of msgnet.preview)")
    p.add_argument("--preset", default="candy", help="the style of the strength/colour strips")
    p.add_argument("--mix", nargs=2, default=["candy", "udnie"], metavar=("A", "B"))
    p.add_argument("--size", type=int, default=256, help="longest side of each cell")
    p.add_argument("--sheet-size", type=int, default=160, help="cell size of the sheet")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("-o", "--output-dir", type=Path, default=ROOT / "docs" / "img")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    stylizer = Stylizer.from_file(args.weights, max_size=max(args.size, 512))
    if args.content is None:
        from msgnet.preview import demo_scene

        photo = demo_scene()
    else:
        photo = load_image(args.content)
    content = stylizer.prepare_content(photo, args.size)
    style = stylizer.preset_target(args.preset)
    out = args.output_dir
    out.mkdir(parents=True, exist_ok=True)

    save(strip(stylizer, content, [(f"strength {s:g}", style, Controls(strength=s))
                                   for s in (0.0, 0.25, 0.5, 1.0)]), out / "controls_strength.jpg")
    save(strip(stylizer, content, [("photo", style, Controls(strength=0.0)),
                                   (args.preset, style, Controls()),
                                   (f"{args.preset}, colours kept", style,
                                    Controls(keep_colors=True))]), out / "controls_colors.jpg")
    a, b = (stylizer.preset_target(n) for n in args.mix)
    save(strip(stylizer, content, [(args.mix[0], a, Controls()), (args.mix[1], b, Controls()),
                                   (f"{args.mix[0]} 50% + {args.mix[1]} 50%",
                                    mix_targets([a, b], [0.5, 0.5]), Controls())]),
         out / "controls_mix.jpg")
    started = time.perf_counter()
    sheet = contact_sheet(stylizer, photo, size=args.sheet_size, columns=6)
    seconds = time.perf_counter() - started
    save(sheet, out / "controls_sheet.jpg")
    print(f"sheet of {len(stylizer.preset_names())} presets at {args.sheet_size} px: "
          f"{seconds:.2f} s in process, {args.threads} thread(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
