"""Train the style predictor (:mod:`msgnet.model.predictor`) for a set of weights.

The generator stays frozen; only the small predictor learns. Each step takes ``batch`` random
(style, photo crop) pairs, predicts every style's decoder affine from its upload features,
stylizes the crops with the upload's own Inspiration matrix and that affine, and descends the
recipe's VGG losses in the units the quality figures use: the style loss over the unstylized
crop's, the content loss over the style picture's own (as :mod:`msgnet.learning.learn` does
for one style). One content weight, shared by every style, adapts so the content ratio stays
near ``budget``.

Styles: every picture of ``--style-dir`` (repeatable), each also in ``variants - 1`` random
colour-augmented versions (a crop, a flip, and one of a hue rotation, a channel permutation, a
saturation change or grayscale), so the predictor sees colours no painting of the set has.
What a variant needs (upload features, Inspiration matrix, VGG Grams, its content reference) is
computed once and cached in the run folder. ``--collages`` and ``--textures`` add pictures made
from the set or in code (:mod:`msgnet.training.textures`). Photos: random crops of
``--photos``, less the held-out ``val_`` photos.

    python -m msgnet train-predictor --weights weights/msgnet-21styles.pt \\
        --style-dir ../shared/data/styles/extra --style-dir ../shared/data/styles/21styles \\
        --photos ../shared/data/content --run ~/.cache/msgnet/runs/predictor --steps 6000

The run folder holds ``trainstate.pt`` (resumed exactly when present), ``log.txt`` and a
predictor file every ``--save-every`` steps; ``--output`` (default: beside the weights, where
the server looks) gets the last one.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from msgnet.imageio import image_to_bgr, list_images, load_image, resize_longest
from msgnet.learning.learn import decoder, shorter_side
from msgnet.learning.vgg import CONTENT_LAYER, Vgg16Features, style_grams
from msgnet.model.checkpoint import LoadedWeights, load_weights, weights_fingerprint
from msgnet.model.net import inspiration_matrix
from msgnet.model.predictor import (
    ENCODER_SIZE,
    FEATURE_KINDS,
    StylePredictor,
    save_predictor,
    sidecar_path,
    style_features,
)
from msgnet.training.textures import collage, texture

CROP = 128
HELD_OUT_PREFIX = "val_"


@dataclass
class Style:
    """What one style variant costs once: its features, matrix, VGG Grams, content reference."""

    features: torch.Tensor  # (F,)
    matrix: torch.Tensor  # (C, C): the Inspiration layer's M for the upload's Gram
    grams: list[torch.Tensor]  # VGG style-layer Grams at ``style_size``
    as_content: torch.Tensor  # VGG content features of the picture squashed to a crop


def augment(img: Image.Image, rng: random.Random, crop_min: float = 0.6) -> Image.Image:
    """A random crop (``crop_min``-100 % a side), maybe a flip, and one colour change."""
    img = img.convert("RGB")
    w, h = img.size
    s = rng.uniform(crop_min, 1.0)
    cw, ch = max(1, int(w * s)), max(1, int(h * s))
    x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
    img = img.crop((x, y, x + cw, y + ch))
    if rng.random() < 0.5:
        img = ImageOps.mirror(img)
    kind = rng.choice(["hue", "perm", "sat", "gray", "hue"])
    if kind == "perm":
        a = np.asarray(img)[:, :, rng.sample(range(3), 3)]
        return Image.fromarray(np.ascontiguousarray(a))
    if kind == "gray":
        return img.convert("L").convert("RGB")
    hsv = np.asarray(img.convert("HSV")).astype(np.float32) / 255
    if kind == "hue":
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(0.15, 0.85)) % 1
    else:
        hsv[..., 1] = np.clip(hsv[..., 1] * rng.choice([0.3, 0.6, 1.5, 2.0]), 0, 1)
    return Image.fromarray((hsv * 255).astype(np.uint8), "HSV").convert("RGB")


@torch.no_grad()
def prepare_style(loaded: LoadedWeights, vgg: Vgg16Features, img: Image.Image,
                  style_size: int, features: str = "gram-colour") -> Style:
    net = loaded.net
    enc = image_to_bgr(resize_longest(img, ENCODER_SIZE))
    gram = net.style_target(enc)
    squashed = image_to_bgr(img.convert("RGB").resize((CROP, CROP), Image.Resampling.LANCZOS))
    return Style(features=style_features(enc, gram, net.model1, features)[0],
                 matrix=inspiration_matrix(net.ins.weight, gram)[0],
                 grams=[g[0] for g in style_grams(vgg(image_to_bgr(resize_longest(img,
                                                                                  style_size))))],
                 as_content=vgg(squashed, upto=CONTENT_LAYER)[CONTENT_LAYER][0])


def prepare_styles(loaded: LoadedWeights, vgg: Vgg16Features, folders: list[Path],
                   variants: int, style_size: int, seed: int, cache: Path | None,
                   crop_min: float = 0.6, textures: int = 0, collages: int = 0,
                   features: str = "gram-colour") -> list[Style]:
    """Every picture of ``folders`` in ``variants`` versions, then ``collages`` collages of two
    random pictures and ``textures`` procedural textures (:mod:`msgnet.training.textures`),
    one version each; read from ``cache`` when it is there, else written to it."""
    if cache is not None and cache.is_file():
        return [Style(**s) for s in torch.load(cache, weights_only=True)]
    rng = random.Random(seed)
    styles = []
    paths = [p for folder in folders for p in list_images(folder)]
    for path in paths:
        img = load_image(path)
        for v in range(variants):
            styles.append(prepare_style(loaded, vgg, img if v == 0 else augment(img, rng, crop_min),
                                        style_size, features))
    made = [collage(load_image(a), load_image(b), rng)
            for a, b in (rng.sample(paths, 2) for _ in range(collages))]
    made += [texture(rng) for _ in range(textures)]
    styles += [prepare_style(loaded, vgg, img, style_size, features) for img in made]
    if cache is not None:
        torch.save([vars(s) for s in styles], cache)
    return styles


def photo_crops(folder: Path, count: int, seed: int) -> torch.Tensor:
    """``count`` random square crops of the training photos (never the held-out ``val_``)."""
    rng = random.Random(seed)
    files = list_images(folder, exclude_prefix=[HELD_OUT_PREFIX])
    rng.shuffle(files)
    crops = []
    for path in files[:count]:
        img = shorter_side(load_image(path), 2 * CROP)
        w, h = img.size
        x, y = rng.randint(0, w - CROP), rng.randint(0, h - CROP)
        crops.append(image_to_bgr(img.crop((x, y, x + CROP, y + CROP)))[0])
    if not crops:
        raise ValueError(f"no training photos in {folder}")
    return torch.stack(crops)


def _per_sample_gram_loss(grams: list[torch.Tensor], targets: list[torch.Tensor]) -> torch.Tensor:
    return sum(((g - t) ** 2).mean(dim=(1, 2)) for g, t in zip(grams, targets, strict=True))


def _cache_name(args: argparse.Namespace) -> str:
    """The run folder's style cache, named by what changes its contents (not the folders: one
    run, one set of folders)."""
    extra = (f"_c{args.crop_min:g}" if args.crop_min != 0.6 else "") + \
        (f"_t{args.textures}" if args.textures else "") + \
        (f"_m{args.collages}" if args.collages else "") + \
        (f"_{args.features}" if args.features != "gram-colour" else "")
    return f"styles_v{args.variants}_s{args.style_size}{extra}.pt"


def _metadata(args: argparse.Namespace, steps: int, styles: int) -> dict:
    """How a predictor file was trained, kept in its metadata (what a later A/B compares)."""
    return {"steps": steps, "styles": styles, "budget": args.budget, "variants": args.variants,
            "dropout": args.dropout, "feature_noise": args.feature_noise,
            "weight_decay": args.weight_decay, "crop_min": args.crop_min,
            "textures": args.textures, "collages": args.collages, "features": args.features}


def train_predictor(args: argparse.Namespace) -> Path:
    torch.set_num_threads(args.threads)
    run = Path(args.run).expanduser()
    run.mkdir(parents=True, exist_ok=True)
    rng = random.Random(args.seed)
    torch.manual_seed(args.seed)
    loaded = load_weights(args.weights, predictor=False)
    net = loaded.net.eval()
    vgg = Vgg16Features.from_file(args.vgg).eval()
    for p in [*net.parameters(), *vgg.parameters()]:
        p.requires_grad_(False)
    styles = prepare_styles(loaded, vgg, [Path(f) for f in args.style_dir], args.variants,
                            args.style_size, args.seed,
                            run / _cache_name(args), args.crop_min, args.textures,
                            args.collages, args.features)
    crops = photo_crops(Path(args.photos), args.pool, args.seed)
    with torch.no_grad():
        crop_feats = net.model1(crops)
        photo_vgg = vgg(crops)
        crop_grams = style_grams(photo_vgg)
        crop_content = photo_vgg[CONTENT_LAYER]
    print(f"{len(styles)} style variants, {len(crops)} photo crops", flush=True)

    feats = torch.stack([s.features for s in styles])
    pred = StylePredictor(feats.shape[1], net.affine_size, args.hidden, args.bottleneck,
                          args.dropout, args.features)
    pred.set_normalisation(feats)
    pred.train()
    opt = torch.optim.AdamW(pred.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    state_path = run / "trainstate.pt"
    step0, log_cw = 0, 0.0
    if state_path.is_file():
        state = torch.load(state_path, weights_only=True)
        pred.load_state_dict(state["predictor"])
        opt.load_state_dict(state["optimizer"])
        step0, log_cw = int(state["step"]), float(state["log_cw"])
        rng.seed(args.seed + step0)
        print(f"resumed at step {step0}", flush=True)
    fingerprint = weights_fingerprint(net.state_dict())
    output = Path(args.output) if args.output else sidecar_path(args.weights)
    dec = decoder(net)
    log = (run / "log.txt").open("a")
    ema, started = None, time.monotonic()
    for step in range(step0, args.steps):
        picked = [styles[rng.randrange(len(styles))] for _ in range(args.batch)]
        idx = [rng.randrange(len(crops)) for _ in range(args.batch)]
        targets = [torch.stack([s.grams[i] for s in picked]) for i in range(len(crop_grams))]
        with torch.no_grad():
            unstylized = _per_sample_gram_loss([g[idx] for g in crop_grams], targets)
            as_content = torch.stack([s.as_content for s in picked])
            reference = ((as_content - crop_content[idx]) ** 2).mean(dim=(1, 2, 3))
        f = crop_feats[idx]
        b, c, h, w = f.shape
        x = torch.stack([s.features for s in picked])
        if args.feature_noise:  # in units of the training styles' spread, per feature
            x = x + args.feature_noise * pred.std * torch.randn_like(x)
        net.set_affine(pred(x))
        try:
            y = dec(torch.bmm(torch.stack([s.matrix for s in picked]), f.reshape(b, c, h * w))
                    .reshape(b, c, h, w))
        finally:
            net.set_affine(None)
        fy = vgg(y)
        style_ratio = _per_sample_gram_loss(style_grams(fy), targets) / unstylized
        content_ratio = ((fy[CONTENT_LAYER] - crop_content[idx]) ** 2).mean(dim=(1, 2, 3)) \
            / reference
        loss = (style_ratio + math.exp(log_cw) * content_ratio).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        now = (style_ratio.mean().item(), content_ratio.mean().item())
        log_cw += args.budget_rate * math.log(max(now[1], 1e-6) / args.budget)
        ema = now if ema is None else tuple(0.98 * e + 0.02 * x
                                            for e, x in zip(ema, now, strict=True))
        done = step + 1
        if done % 25 == 0 or done == args.steps:
            line = (f"step {done} style {ema[0]:.3f} content {ema[1]:.3f} "
                    f"cw {math.exp(log_cw):.2f} {(time.monotonic() - started) / (done - step0):.2f}"
                    " s/step")
            print(line, flush=True)
            log.write(line + "\n")
            log.flush()
        if done % args.save_every == 0 or done == args.steps:
            torch.save({"predictor": pred.state_dict(), "optimizer": opt.state_dict(),
                        "step": done, "log_cw": log_cw}, state_path)
            save_predictor(pred, run / f"predictor-{done}.pt", fingerprint,
                           _metadata(args, done, len(styles)))
    save_predictor(pred, output, fingerprint, _metadata(args, args.steps, len(styles)))
    return output


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", required=True, help="the generator the predictor is for")
    p.add_argument("--vgg", required=True, help="VGG16 loss network (conv1_1-conv4_3)")
    p.add_argument("--style-dir", action="append", required=True,
                   help="a folder of style pictures (repeatable); never the unseen_dev set")
    p.add_argument("--photos", required=True, help="training photos (val_* are left out)")
    p.add_argument("--run", required=True, help="run folder (trainstate, log, snapshots)")
    p.add_argument("--output", help="predictor file (default: NAME.predictor.pt beside "
                                    "the weights)")
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--budget", type=float, default=0.40, help="content ratio to hold")
    p.add_argument("--budget-rate", type=float, default=0.05)
    p.add_argument("--variants", type=int, default=3, help="versions of each style (1: none)")
    p.add_argument("--style-size", type=int, default=512)
    p.add_argument("--pool", type=int, default=160, help="photo crops")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--bottleneck", type=int, default=64)
    p.add_argument("--dropout", type=float, default=0.0,
                   help="dropout on the predictor's bottleneck while training")
    p.add_argument("--feature-noise", type=float, default=0.0,
                   help="Gaussian noise on the features while training, in standard deviations")
    p.add_argument("--weight-decay", type=float, default=0.0, help="AdamW's decoupled decay")
    p.add_argument("--crop-min", type=float, default=0.6,
                   help="smallest side of a variant's random crop, as a fraction")
    p.add_argument("--features", choices=FEATURE_KINDS, default="gram-colour",
                   help="what the predictor sees of a picture (msgnet/model/predictor.py)")
    p.add_argument("--textures", type=int, default=0,
                   help="procedural textures added as styles (msgnet/training/textures.py)")
    p.add_argument("--collages", type=int, default=0,
                   help="collages of two random style pictures added as styles")
    p.add_argument("--save-every", type=int, default=250)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    print(json.dumps({"predictor": str(train_predictor(args))}))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m msgnet train-predictor", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
