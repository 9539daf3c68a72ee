"""PSNR of each variant against eager fp32, and tiled against untiled at 1024²."""

from __future__ import annotations

from typing import Any

import torch

from msgnet.imageio import image_to_bgr, resize_longest
from msgnet.inference.fast import FastMSGNet
from msgnet.inference.stylize import pad_to_multiple
from msgnet.inference.tiling import TileConfig, receptive_field, tiled_stylize_one
from msgnet.inference.variants import build_variant
from msgnet.model.checkpoint import LoadedWeights
from msgnet.training.metrics import psnr
from workbench.bench.inputs import photo_tensor, photos, target_for


def seam_ratio(out: torch.Tensor, tile: int) -> dict[str, float]:
    """Mean |difference| across tile borders vs between neighbouring columns/rows inside tiles."""
    _, _, h, w = out.shape
    dx = (out[..., 1:] - out[..., :-1]).abs().mean(dim=(0, 1, 2))  # (w-1,): col j vs j+1
    dy = (out[..., 1:, :] - out[..., :-1, :]).abs().mean(dim=(0, 1, 3))
    bx = [c - 1 for c in range(tile, w, tile)]
    by = [r - 1 for r in range(tile, h, tile)]
    inner_x = [j for j in range(w - 1) if j not in bx]
    inner_y = [i for i in range(h - 1) if i not in by]
    across = float(torch.cat([dx[bx], dy[by]]).mean())
    inside = float(torch.cat([dx[inner_x], dy[inner_y]]).mean())
    return {"across_borders": across, "inside_tiles": inside, "ratio": across / inside}


def bench_quality(loaded: LoadedWeights, variants: list[str]) -> dict[str, Any]:
    net = loaded.net
    target = target_for(loaded, net)
    pics = photos(3)
    xs = [pad_to_multiple(image_to_bgr(resize_longest(img, 512))) for _, img in pics]
    with torch.inference_mode():
        refs = [net.stylize(x, target).clamp(0, 255) for x in xs]
    results: dict[str, Any] = {"photos": [n for n, _ in pics], "size": 512, "variants": {}}
    for name in variants:
        if name == "eager":
            continue
        impl = build_variant(name, net)
        values = [psnr(impl(x, target), ref) for x, ref in zip(xs, refs, strict=True)]
        results["variants"][name] = {"psnr_db": values, "min_psnr_db": min(values)}
        print(f"  psnr {name:8s} vs eager: min {min(values):.1f} dB", flush=True)
    # tiled vs full at 1024²: the served settings forced on (1024² itself is not tiled when
    # served), then 256 px tiles (3 borders per axis for the seam ratio) with the thumbnail
    # downscaled as much as the served config downscales a 2048 px image, and at half size
    runner = FastMSGNet(net)
    served = TileConfig()
    x = photo_tensor((1024, 1024))
    full = runner(x, target).clamp(0, 255)
    same_ratio = max(16, round(1024 * served.thumb_size / 2048 / 4) * 4)
    results["tiled_1024"] = {"receptive_field_px": receptive_field(runner, net.channels),
                             "runs": []}
    configs = [TileConfig(threshold_pixels=0)] + [
        TileConfig(threshold_pixels=0, tile=256, halo=served.halo, blend=served.blend,
                   thumb_size=thumb) for thumb in sorted({same_ratio, 512})]
    for cfg in configs:
        tiled = tiled_stylize_one(runner, x, target[0], cfg).clamp(0, 255)
        run = {"config": cfg.__dict__, "psnr_vs_full_db": psnr(tiled, full),
               "seams": seam_ratio(tiled, cfg.tile),
               "seam_ratio_untiled_reference": seam_ratio(full, cfg.tile)["ratio"]}
        results["tiled_1024"]["runs"].append(run)
        print(f"  tiled vs full 1024² (tile {cfg.tile}, thumb {cfg.thumb_size}): "
              f"{run['psnr_vs_full_db']:.1f} dB, seam ratio {run['seams']['ratio']:.2f} "
              f"(untiled {run['seam_ratio_untiled_reference']:.2f})", flush=True)
    print(f"  receptive field {results['tiled_1024']['receptive_field_px']} px "
          f"(halo {served.halo})", flush=True)
    return results


