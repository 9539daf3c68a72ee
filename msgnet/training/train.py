"""Train MSG-Net with the authors' recipe; write one weights file with the preset bank.

Recipe (Zhang & Dana; ``experiments/main.py``): VGG16 loss network, style loss = MSE between
Gram matrices at relu1_2/2_2/3_3/4_3 (weight 5), content loss = MSE at relu2_2 (weight 1),
Adam lr 1e-3, 256 px crops, batch 4, one style per batch cycling through the style set, style
images resized to a fixed size (512 px longest side). The only change: crops are random (plus
horizontal flips) instead of centred, which adds variety at no cost; on a CPU the crops may be
smaller than the 256 px the photos are scaled to (``--crop-size``: the same content scale, less
context, ~4x cheaper at 128 px); and the last bias starts at the ImageNet mean
(:func:`init_output_bias`).

Cheaper steps, the same maths (each measured; see docs/training.md):

* the VGG style Grams of each style image are computed once up front (they are constants);
* the photo's VGG pass (the content target, no gradients) stops at relu2_2, the only layer the
  content loss reads;
* photos are decoded and resized once, then only cropped (the crops and flips are the same).

One measured deviation, opt-in: ``--style-encoder-size`` feeds the siamese encoder a smaller
style image than the VGG Gram targets use (those stay at ``--style-size``). The preset bank is
then encoded at that size too, so presets are what the decoder was trained on.

One loss change, opt-in: ``--style-balance ALPHA`` weights each style's loss by how far photos
start from it (:mod:`msgnet.training.style_balance`), so the styles far from photos (mosaic,
starry_night) stop drowning the content loss; ``--style-factor NAME=F`` multiplies one style's
weight on top.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import platform
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from msgnet.imageio import list_images
from msgnet.learning.vgg import Vgg16Features
from msgnet.model.checkpoint import save_weights
from msgnet.model.net import Net
from msgnet.training.data import ContentSampler, load_styles, step_style
from msgnet.training.inspiration import inspiration_ranks, inverse_gram_init
from msgnet.training.optimizer import load_optimizer_state, make_optimizer, set_lr, warmup_lr
from msgnet.training.step import (
    compute_presets,
    decoder_parameters,
    gram_targets,
    init_output_bias,
    load_init_weights,
    train_step,
    update_ema,
)
from msgnet.training.style_balance import (
    apply_style_factors,
    balance_weights,
    parse_style_factors,
    unstylized_losses,
)

BALANCE_PHOTOS = 16  # training crops that measure each style's distance (--style-balance)


@dataclass
class TrainConfig:
    content_dir: str
    style_dir: str
    vgg: str
    output: str
    steps: int = 40000
    batch_size: int = 4
    image_size: int = 256
    crop_size: int | None = None
    style_size: int = 512
    lr: float = 1e-3
    content_weight: float = 1.0
    style_weight: float = 5.0
    ngf: int = 128
    seed: int = 42
    device: str = "cpu"
    amp: bool = True
    checkpoint_every: int = 100
    resume: bool = True
    init_weights: str | None = None
    exclude_prefix: list[str] = field(default_factory=list)
    max_seconds: float | None = None
    threads: int | None = None
    style_encoder_size: int | None = None
    init_inspiration: float | None = None
    warmup_steps: int = 0  # linear lr warm-up over the optimizer's first steps (training.optimizer)
    ema_decay: float | None = None  # ship an exponential moving average of the weights
    style_balance: float = 0.0  # per-style loss weights (training.style_balance); 0: the recipe
    # named styles' loss weights multiplied on top of the balance, ["candy=1.5", ...]
    style_factor: list[str] = field(default_factory=list)
    # training-only style folders (not presets) and the share of steps drawn from them
    extra_style_dir: list[str] = field(default_factory=list)
    extra_share: float = 0.5
    freeze_decoder: bool = False  # train only the encoder and the Inspiration layer


def _state_path(output: Path) -> Path:
    return output.with_name(output.stem + ".trainstate.pt")


def _history_entry(step: int, elapsed: float, window: list[tuple[float, float]],
                   window_started: float | None) -> dict:
    """The log line of a checkpoint: mean weighted losses of the steps since the last one, and
    the step time."""
    entry: dict = {"step": step}
    if window:
        c, s = np.mean(window, axis=0)
        entry.update(content=float(c), style=float(s))
    entry["seconds"] = round(elapsed, 1)
    if window_started is not None and window:
        entry["s_per_step"] = round((time.monotonic() - window_started) / len(window), 3)
    return entry


def train(cfg: TrainConfig, progress: bool = True) -> Path:
    """Run (or resume) training; returns the path of the weights file."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    device = torch.device(cfg.device)
    use_amp = cfg.amp and device.type == "cuda"
    output = Path(cfg.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(cfg.seed)

    content_files = list_images(cfg.content_dir, cfg.exclude_prefix)
    style_files = list_images(cfg.style_dir)
    if not style_files:
        raise ValueError(f"no style images in {cfg.style_dir}")
    preset_stems = {p.stem for p in style_files}
    extra_files = [p for d in cfg.extra_style_dir for p in list_images(d)
                   if p.stem not in preset_stems]
    if not 0 <= cfg.extra_share < 1:
        raise ValueError(f"--extra-share must be in [0, 1), got {cfg.extra_share}")
    if cfg.extra_style_dir and not extra_files:
        raise ValueError(f"no style images besides the presets in "
                         f"{', '.join(cfg.extra_style_dir)}")
    styles = load_styles(style_files + extra_files, cfg.style_size)
    encoder_size = cfg.style_encoder_size or cfg.style_size
    encoder_styles = (styles if encoder_size == cfg.style_size
                      else load_styles(style_files + extra_files, encoder_size))
    preset_names = [p.stem for p in style_files]
    extra_names = [n for n in styles if n not in preset_stems]
    extra_order = list(range(len(extra_names)))
    random.Random(cfg.seed + 2).shuffle(extra_order)
    names = list(styles)
    sampler = ContentSampler(content_files, cfg.image_size, rng, cfg.crop_size)

    vgg_for_loss = Vgg16Features.from_file(cfg.vgg).to(device)
    style_targets = {n: gram_targets(vgg_for_loss, s.to(device)) for n, s in styles.items()}
    style_balance = None
    balance = dict.fromkeys(names, 1.0)
    if cfg.style_balance:
        # its own sampler and seed: the training draws (and an exact resume) stay the same
        probe = ContentSampler(content_files, cfg.image_size, random.Random(cfg.seed + 1),
                               cfg.crop_size).batch(BALANCE_PHOTOS).to(device)
        unstylized = unstylized_losses(vgg_for_loss, probe, style_targets)
        balance = balance_weights(unstylized, cfg.style_balance)
        style_balance = {"alpha": cfg.style_balance, "photos": BALANCE_PHOTOS,
                         "weights": {n: round(w, 4) for n, w in balance.items()},
                         "unstylized_style_loss": {n: round(v) for n, v in unstylized.items()}}
    factors = parse_style_factors(cfg.style_factor)
    if factors:
        balance = apply_style_factors(balance, factors)

    net = Net(ngf=cfg.ngf)
    if cfg.init_weights:
        load_init_weights(net, cfg.init_weights)
    else:
        init_output_bias(net)
    state_file = _state_path(output)
    resuming = cfg.resume and state_file.exists()
    inspiration_init = None
    if cfg.init_inspiration is not None and not resuming:
        # a fresh start (or --init-weights): the optimizer is fresh too, so W's moments are 0
        with torch.no_grad():
            grams = [net.style_target(s) for s in encoder_styles.values()]
        peak = inverse_gram_init(net, grams, cfg.init_inspiration)
        inspiration_init = {"lambda": cfg.init_inspiration, "max_abs_weight": round(peak, 3),
                            **inspiration_ranks(net, dict(zip(names, grams, strict=True)))}
    net = net.to(device)
    if cfg.freeze_decoder:
        for p in decoder_parameters(net):
            p.requires_grad_(False)
    optimizer = make_optimizer(net, cfg.lr)
    step, elapsed, history = 0, 0.0, []
    if resuming:
        state = torch.load(state_file, map_location=device, weights_only=False)
        if "ins.skip" in state["net"]:
            raise ValueError(f"{state_file} was trained with an Inspiration skip (the dropped "
                             "--inspiration-skip experiment); start a new folder instead")
        net.load_state_dict(state["net"])
        load_optimizer_state(optimizer, state["optimizer"], cfg.lr)
        step, elapsed, history = state["step"], state["elapsed"], state["history"]
        rng.setstate(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        sampler.order = state["order"]
        inspiration_init = state.get("inspiration_init")

    ema = None
    if cfg.ema_decay:
        # successive checkpoints swing between style and content (docs/training.md): the
        # weights file gets the average over the last ~1/(1 - decay) steps instead
        ema = copy.deepcopy(net).requires_grad_(False)
        if resuming and state.get("ema") is not None:
            ema.load_state_dict(state["ema"])

    def checkpoint() -> None:
        shipped = ema if ema is not None else net
        presets = compute_presets(shipped, {n: encoder_styles[n] for n in preset_names},
                                  device)
        net.train()
        if history:  # the diagnostic the training issue asked for, once per checkpoint
            history[-1].update(inspiration_ranks(shipped, presets))
        torch.save({"net": net.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                    "ema": None if ema is None else ema.state_dict(),
                    "elapsed": elapsed, "history": history, "rng": rng.getstate(),
                    "torch_rng": torch.get_rng_state(), "order": sampler.order,
                    "config": asdict(cfg), "inspiration_init": inspiration_init}, state_file)
        meta = {
            "recipe": {k: v for k, v in asdict(cfg).items()
                       if k not in ("content_dir", "style_dir", "vgg", "output")},
            "steps": step, "train_seconds": round(elapsed, 1),
            "images_seen": step * cfg.batch_size,
            "data": {"content_images": len(content_files), "styles": len(preset_names),
                     "extra_styles": len(extra_names),
                     "held_out_prefixes": cfg.exclude_prefix},
            "hardware": f"{device.type}: {platform.processor() or platform.machine()}, "
                        f"{torch.get_num_threads()} threads",
            "date": dt.date.today().isoformat(),
            "losses_recent": history[-1] if history else None,
            "style_encoder_size": encoder_size,
            "inspiration_init": inspiration_init,
            "style_balance": style_balance,
            "style_factors": factors or None,
        }
        save_weights(output, shipped.cpu(), presets, meta)
        shipped.to(device)

    try:
        from tqdm import tqdm
        bar = tqdm(total=cfg.steps, initial=step, disable=not progress, dynamic_ncols=True)
    except ImportError:  # pragma: no cover
        bar = None
    net.train()
    started = time.monotonic() - elapsed
    window: list[tuple[float, float]] = []  # the steps' losses since the checkpoint
    window_started = time.monotonic()
    while step < cfg.steps:
        name = step_style(step, preset_names, extra_names, cfg.extra_share, extra_order)
        x = sampler.batch(cfg.batch_size).to(device)
        if cfg.warmup_steps and step <= cfg.warmup_steps:  # the step after it restores lr
            set_lr(optimizer, warmup_lr(cfg.lr, step, cfg.warmup_steps))
        c_loss, s_loss = train_step(net, vgg_for_loss, optimizer, x,
                                    encoder_styles[name].to(device), style_targets[name],
                                    cfg.content_weight, cfg.style_weight * balance[name], use_amp)
        if ema is not None:
            update_ema(ema, net, cfg.ema_decay)
        step += 1
        elapsed = time.monotonic() - started
        window.append((c_loss.item(), s_loss.item()))
        if bar is not None:
            bar.update(1)
            if (step % 10 == 0 or step == cfg.steps) and window:
                c, s = np.mean(window[-len(names):], axis=0)
                bar.set_postfix(content=f"{c:.3g}", style=f"{s:.3g}", style_name=name)
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            history.append(_history_entry(step, elapsed, window, window_started))
            window = []
            checkpoint()
            window_started = time.monotonic()
        if cfg.max_seconds and elapsed >= cfg.max_seconds:
            break
    if bar is not None:
        bar.close()
    if not output.exists() or (history and history[-1]["step"] != step) or not history:
        if window:
            history.append(_history_entry(step, elapsed, window, None))
        checkpoint()
    return output


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--content-dir", required=True, help="folder of content photos (recursive)")
    p.add_argument("--style-dir", required=True, help="folder of style images; file stem = preset")
    p.add_argument("--vgg", required=True, help="VGG16 Caffe weights (conv1_1..conv4_3 dict)")
    p.add_argument("-o", "--output", required=True, help="weights file to write")
    p.add_argument("--steps", type=int, default=40000)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--image-size", type=int, default=256,
                   help="photos are resized so their shorter side is this")
    p.add_argument("--crop-size", type=int,
                   help="random crop side (default: --image-size); smaller is cheaper on CPU")
    p.add_argument("--style-size", type=int, default=512)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--content-weight", type=float, default=1.0)
    p.add_argument("--style-weight", type=float, default=5.0)
    p.add_argument("--ngf", type=int, default=128)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--device", default="cpu", help="cpu or cuda[:N]")
    p.add_argument("--no-amp", dest="amp", action="store_false",
                   help="disable bf16 mixed precision on CUDA")
    p.add_argument("--checkpoint-every", type=int, default=100)
    p.add_argument("--no-resume", dest="resume", action="store_false")
    p.add_argument("--init-weights", help="start from these weights (ours or official)")
    p.add_argument("--exclude-prefix", action="append", default=[],
                   help="skip content files whose name starts with this (held-out set)")
    p.add_argument("--max-seconds", type=float, help="stop (and save) after this much time")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--style-encoder-size", type=int,
                   help="longest side of the style image fed to the siamese encoder (default: "
                        "--style-size); the VGG Gram targets stay at --style-size")
    p.add_argument("--init-inspiration", type=float, metavar="LAMBDA",
                   help="start the Inspiration weight at (mean preset Gram + LAMBDA*I)^-1 "
                        "(fresh starts and --init-weights only, not when resuming)")
    p.add_argument("--warmup-steps", type=int, default=0, metavar="N",
                   help="raise the learning rate linearly from 0 over the optimizer's first N "
                        "steps; use ~200 with --init-weights on trained weights (a fresh "
                        "Adam at full lr sets them back)")
    p.add_argument("--ema-decay", type=float, metavar="D",
                   help="write an exponential moving average of the weights (e.g. 0.999: "
                        "~1 000 steps) to the weights file; training itself is unchanged")
    p.add_argument("--style-balance", type=float, default=0.0, metavar="ALPHA",
                   help="weight each style's loss by (geometric mean / its own unstylized "
                        "loss)^ALPHA, so styles far from photos do not drown the content "
                        "(msgnet.training.style_balance); 0, the default, is the recipe; resuming "
                        "switches freely")
    p.add_argument("--style-factor", action="append", default=[], metavar="NAME=FACTOR",
                   help="multiply one style's loss weight (repeatable), e.g. candy=1.5 keeps "
                        "a style with a near twin stylized at a higher --content-weight; "
                        "resuming switches freely")
    p.add_argument("--extra-style-dir", action="append", default=[], metavar="DIR",
                   help="more style images to train on (repeatable); they are training "
                        "targets only: the preset bank keeps the --style-dir styles")
    p.add_argument("--extra-share", type=float, default=0.5, metavar="F",
                   help="share of the steps that train on an --extra-style-dir style "
                        "(default 0.5: the presets keep half of the steps)")
    p.add_argument("--freeze-decoder", action="store_true",
                   help="train only the encoder and the Inspiration layer, which map a style "
                        "to its target; the decoder after them stays as it is")


def run(args: argparse.Namespace) -> int:
    cfg = TrainConfig(**{k: v for k, v in vars(args).items()
                         if k in TrainConfig.__dataclass_fields__})
    out = train(cfg)
    print(json.dumps({"weights": str(out)}))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m msgnet train", description=__doc__)
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
