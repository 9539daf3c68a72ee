"""Quality report: how close our feed-forward MSG-Net gets to what it approximates.

For held-out content photos and a set of styles, the VGG16 loss network measures the style loss
(sum over relu1_2..relu4_3 of the MSE between Gram matrices) and the content loss (MSE at
relu2_2) of

* **model**: our output at ``--size`` (longest side),
* **unstylized**: the content photo itself (the style loss to beat),
* **style_image**: the style image resized to the photo (the content loss to beat),
* **gatys**: direct optimisation of the pixels on the same losses (Gatys et al.), the quality
  a feed-forward network is approximating. It costs hundreds of VGG passes per pair, so it runs on
  a subset at ``--gatys-size`` and is compared with the model at that same size.

Writes a JSON report and a gallery PNG (rows: contents, columns: styles).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from msgnet.checkpoint import load_weights
from msgnet.model import Net
from msgnet.train import list_images, load_rgb, resize_longest, rgb_to_bgr_tensor
from msgnet.vgg import Vgg16Features, content_loss, style_grams, style_loss


@dataclass
class Losses:
    style: float
    content: float


def _bgr(img: Image.Image) -> torch.Tensor:
    return rgb_to_bgr_tensor(img).unsqueeze(0)


def _to_image(bgr: torch.Tensor) -> Image.Image:
    arr = bgr[0].clamp(0, 255).round().byte().permute(1, 2, 0).numpy()[:, :, ::-1]
    return Image.fromarray(arr.copy(), "RGB")


def _pad4(x: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    h, w = x.shape[-2:]
    ph, pw = (-h) % 4, (-w) % 4
    if ph or pw:
        x = torch.nn.functional.pad(x, (0, pw, 0, ph), mode="reflect")
    return x, h, w


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB of two images in 0..255 (clamped first, as they would be shown)."""
    mse = float(((a.clamp(0, 255) - b.clamp(0, 255)) ** 2).mean())
    return float("inf") if mse == 0 else 10 * torch.log10(torch.tensor(255.0 ** 2 / mse)).item()


def run_model(net: Net, content: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    x, h, w = _pad4(content)
    with torch.inference_mode():
        return net.stylize(x, target)[..., :h, :w].clamp(0, 255)


def measure(vgg: Vgg16Features, output: torch.Tensor, content_feats: list[torch.Tensor],
            targets: list[torch.Tensor]) -> Losses:
    with torch.inference_mode():
        feats = vgg(output)
        return Losses(style=style_loss(feats, targets).item(),
                      content=content_loss(feats, content_feats).item())


def gatys(vgg: Vgg16Features, content: torch.Tensor, targets: list[torch.Tensor], steps: int,
          content_weight: float = 1.0, style_weight: float = 5.0, lr: float = 5.0
          ) -> torch.Tensor:
    """Optimise the pixels (initialised from the photo) with Adam on the training losses."""
    with torch.no_grad():
        content_feats = [f.detach() for f in vgg(content)]
    x = content.clone().requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr)
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        feats = vgg(x)
        loss = (content_weight * content_loss(feats, content_feats)
                + style_weight * style_loss(feats, targets))
        loss.backward()
        opt.step()
        with torch.no_grad():
            x.clamp_(0, 255)
    return x.detach()



def make_gallery(rows: list[list[Image.Image]], col_titles: list[str], cell: int = 192
                 ) -> Image.Image:
    """Grid of thumbnails; every image is fitted into a ``cell`` square, titles on top."""
    title_h = 22
    grid = Image.new("RGB", (cell * len(col_titles), title_h + cell * len(rows)), "white")
    draw = ImageDraw.Draw(grid)
    for j, title in enumerate(col_titles):
        draw.text((j * cell + 6, 5), title, fill=(0, 0, 0))
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            thumb = img.copy()
            thumb.thumbnail((cell, cell), Image.Resampling.LANCZOS)
            x = j * cell + (cell - thumb.width) // 2
            y = title_h + i * cell + (cell - thumb.height) // 2
            grid.paste(thumb, (x, y))
    return grid


def evaluate(weights: str, content_dir: str, style_dir: str, vgg_path: str, out_json: str,
             gallery: str | None, size: int = 512, style_size: int = 512,
             styles: list[str] | None = None, limit: int = 8, gatys_pairs: int = 2,
             gatys_steps: int = 300, gatys_size: int = 256, threads: int | None = None,
             gallery_styles: list[str] | None = None, content_prefix: str = "") -> dict:
    if threads:
        torch.set_num_threads(threads)
    t0 = time.monotonic()
    loaded = load_weights(weights)
    net = loaded.net
    vgg = Vgg16Features.from_file(vgg_path)
    style_files = {p.stem: p for p in list_images(style_dir)}
    names = styles or sorted(style_files)
    missing = [n for n in names if n not in style_files]
    if missing:
        raise SystemExit(f"style images not found in {style_dir}: {', '.join(missing)}")
    contents = [p for p in list_images(content_dir) if p.name.startswith(content_prefix)][:limit]
    if not contents:
        raise SystemExit(f"no content images in {content_dir}")

    style_imgs = {n: resize_longest(load_rgb(style_files[n]), style_size) for n in names}
    with torch.inference_mode():
        vgg_targets = {n: style_grams(vgg(_bgr(img))) for n, img in style_imgs.items()}
        gen_targets = {n: loaded.presets.get(n) if n in loaded.presets
                       else net.style_target(_bgr(img)) for n, img in style_imgs.items()}

    pairs, rows = [], []
    for path in contents:
        photo = resize_longest(load_rgb(path), size)
        c = _bgr(photo)
        with torch.inference_mode():
            c_feats = vgg(c)
        row = [photo]
        for n in names:
            out = run_model(net, c, gen_targets[n])
            styled = measure(vgg, out, c_feats, vgg_targets[n])
            plain = measure(vgg, c, c_feats, vgg_targets[n])
            as_style = measure(vgg, _bgr(style_imgs[n].resize(photo.size)), c_feats,
                               vgg_targets[n])
            pairs.append({"content": path.name, "style": n, "model": vars(styled),
                          "unstylized": vars(plain), "style_image": vars(as_style)})
            row.append(_to_image(out))
        rows.append(row)

    def mean(kind: str, key: str, items: list[dict]) -> float:
        return statistics.fmean(p[kind][key] for p in items)

    summary = {k: {"style": mean(k, "style", pairs), "content": mean(k, "content", pairs)}
               for k in ("model", "unstylized", "style_image")}
    summary["ratios"] = {
        "model_style_over_unstylized": summary["model"]["style"] / summary["unstylized"]["style"],
        "model_content_over_style_image":
            summary["model"]["content"] / summary["style_image"]["content"],
    }

    gatys_rows = []
    for k in range(min(gatys_pairs, len(contents) * len(names))):
        path, n = contents[k % len(contents)], names[k % len(names)]
        photo = resize_longest(load_rgb(path), gatys_size)
        c = _bgr(photo)
        style_small = style_imgs[n]
        with torch.no_grad():  # not inference_mode: Gatys back-propagates against these
            c_feats = vgg(c)
            tg = style_grams(vgg(_bgr(style_small)))
        started = time.monotonic()
        g_out = gatys(vgg, c, tg, gatys_steps)
        gatys_rows.append({
            "content": path.name, "style": n, "size": gatys_size, "steps": gatys_steps,
            "seconds": round(time.monotonic() - started, 1),
            "gatys": vars(measure(vgg, g_out, c_feats, tg)),
            "model": vars(measure(vgg, run_model(net, c, gen_targets[n]), c_feats, tg)),
            "unstylized": vars(measure(vgg, c, c_feats, tg)),
            "style_image": vars(measure(vgg, _bgr(style_small.resize(photo.size)), c_feats, tg)),
        })
    if gatys_rows:
        summary["gatys"] = {
            "size": gatys_size, "steps": gatys_steps, "pairs": len(gatys_rows),
            "gatys_style_over_unstylized": statistics.fmean(
                r["gatys"]["style"] / r["unstylized"]["style"] for r in gatys_rows),
            "gatys_content_over_style_image": statistics.fmean(
                r["gatys"]["content"] / r["style_image"]["content"] for r in gatys_rows),
            "model_style_over_gatys": statistics.fmean(
                r["model"]["style"] / r["gatys"]["style"] for r in gatys_rows),
            "model_content_over_gatys": statistics.fmean(
                r["model"]["content"] / r["gatys"]["content"] for r in gatys_rows),
        }

    report = {
        "weights": str(weights), "weights_metadata": loaded.metadata,
        "size": size, "style_size": style_size, "contents": [p.name for p in contents],
        "styles": names, "summary": summary, "pairs": pairs, "gatys": gatys_rows,
        "seconds": round(time.monotonic() - t0, 1),
    }
    Path(out_json).parent.mkdir(parents=True, exist_ok=True)
    Path(out_json).write_text(json.dumps(report, indent=2, default=str))
    if gallery:
        Path(gallery).parent.mkdir(parents=True, exist_ok=True)
        shown = [j for j, n in enumerate(names) if not gallery_styles or n in gallery_styles]
        grid = [[row[0], *(row[j + 1] for j in shown)] for row in rows]
        make_gallery(grid, ["content", *(names[j] for j in shown)]).save(gallery)
    return report


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", required=True)
    p.add_argument("--content-dir", required=True, help="held-out content photos")
    p.add_argument("--style-dir", required=True, help="style images (file stem = preset name)")
    p.add_argument("--vgg", required=True, help="VGG16 Caffe weights")
    p.add_argument("-o", "--output", required=True, help="JSON report path")
    p.add_argument("--gallery", help="gallery image path (.png or .jpg)")
    p.add_argument("--gallery-styles", nargs="*",
                   help="styles shown in the gallery (default: all evaluated styles)")
    p.add_argument("--content-prefix", default="",
                   help="only content files whose name starts with this, e.g. val_ for the "
                        "photos train --exclude-prefix val_ held out")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--style-size", type=int, default=512)
    p.add_argument("--styles", nargs="*", help="style names (default: all in --style-dir)")
    p.add_argument("--limit", type=int, default=8, help="number of content photos")
    p.add_argument("--gatys-pairs", type=int, default=2)
    p.add_argument("--gatys-steps", type=int, default=300)
    p.add_argument("--gatys-size", type=int, default=256)
    p.add_argument("--threads", type=int)


def run(args: argparse.Namespace) -> int:
    report = evaluate(args.weights, args.content_dir, args.style_dir, args.vgg, args.output,
                      args.gallery, size=args.size, style_size=args.style_size,
                      styles=args.styles, limit=args.limit, gatys_pairs=args.gatys_pairs,
                      gatys_steps=args.gatys_steps, gatys_size=args.gatys_size,
                      threads=args.threads, gallery_styles=args.gallery_styles,
                      content_prefix=args.content_prefix)
    print(json.dumps(report["summary"], indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m msgnet evaluate", description=__doc__)
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
