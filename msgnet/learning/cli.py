"""``python -m msgnet learn`` and the learned styles' part of ``stylize``, ``sheet`` and
``presets``: where a preset name is looked up in the style store
(:mod:`msgnet.learning.style_store`) when the weights do not ship it.

    python -m msgnet learn STYLE_IMAGE --name NAME [--store DIR] [--photos DIR] [--vgg PATH]
    python -m msgnet stylize PHOTO --preset NAME -o OUT
    python -m msgnet presets            # the built-in presets, then the learned styles
    python -m msgnet forget NAME        # delete a learned style
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from msgnet.learning.style_store import (
    ENV_VAR,
    StyleStore,
    check_name,
    default_root,
    learned_names,
    learned_target,
)

__all__ = ["add_learn_parser", "add_store_argument", "cmd_forget", "cmd_learn",
           "learned_names", "learned_target", "open_store"]

REPO_ROOT = Path(__file__).resolve().parents[2]
VGG_ENV, PHOTOS_ENV = "MSGNET_VGG", "MSGNET_LEARN_PHOTOS"
DEFAULT_VGG = REPO_ROOT / "weights" / "vgg16_caffe_conv1_1-conv4_3.pt"
MIN_PHOTOS = 4


def add_store_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument("--store", type=Path, default=None,
                   help=f"style store folder (default ${ENV_VAR}, else {default_root()})")


def open_store(args: argparse.Namespace) -> StyleStore:
    return StyleStore(getattr(args, "store", None))


def add_learn_parser(sub) -> None:
    lp = sub.add_parser("learn", help="learn a new style from a picture (under a minute)",
                        description="Fit a style target for the weights from STYLE_IMAGE, "
                                    "with the network frozen, and save it to the style store; "
                                    "then use it as --preset NAME.")
    lp.add_argument("style", metavar="STYLE_IMAGE", type=Path, help="the style picture")
    lp.add_argument("--name", required=True,
                    help="name to use it by (1-40 of a-z 0-9 - _), e.g. --preset NAME")
    add_store_argument(lp)
    lp.add_argument("--photos", type=Path, default=None,
                    help=f"folder of ordinary photos to learn on, at least {MIN_PHOTOS} "
                         f"(default ${PHOTOS_ENV})")
    lp.add_argument("--vgg", type=Path, default=None,
                    help=f"VGG16 loss network (default ${VGG_ENV}, else "
                         f"{DEFAULT_VGG.relative_to(REPO_ROOT)})")
    lp.add_argument("--steps", type=int, default=None, help="fit steps (default: measured)")
    lp.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    lp.add_argument("--force", action="store_true", help="replace a style of that name")
    lp.add_argument("--weights", type=Path, default=None, help="weights file (default: shipped)")

    fp = sub.add_parser("forget", help="delete a learned style from the style store")
    fp.add_argument("name", metavar="NAME")
    add_store_argument(fp)


def _vgg_path(args: argparse.Namespace, error) -> Path:
    path = args.vgg or (Path(os.environ[VGG_ENV]) if os.environ.get(VGG_ENV) else DEFAULT_VGG)
    if not path.is_file():
        raise error(f"the VGG16 loss network is not at {path}: learning measures styles with "
                    f"it. Pass --vgg PATH or set ${VGG_ENV} (docs/learn.md says where to get "
                    "it)")
    return path


def _photo_files(args: argparse.Namespace, error) -> list[Path]:
    from msgnet.imageio import list_images

    folder = args.photos or (Path(os.environ[PHOTOS_ENV]) if os.environ.get(PHOTOS_ENV)
                             else None)
    if folder is None:
        raise error(f"learning needs ordinary photos to learn the style on: pass --photos DIR "
                    f"(any folder with {MIN_PHOTOS}+ photos) or set ${PHOTOS_ENV}")
    if not folder.is_dir():
        raise error(f"photos folder not found: {folder}")
    files = list_images(folder)
    if len(files) < MIN_PHOTOS:
        raise error(f"{folder} holds {len(files)} photos; learning needs at least {MIN_PHOTOS}")
    return files


def cmd_learn(args: argparse.Namespace, parser: argparse.ArgumentParser, error,
              load_image, weights: Path) -> int:
    """Learn, with a progress bar, and save; every check that can fail runs before the fit."""
    import random
    from dataclasses import replace

    from msgnet.learning.learn import LearnConfig, PhotoCrops, learn_style
    from msgnet.learning.vgg import Vgg16Features
    from msgnet.model.checkpoint import load_weights, weights_fingerprint

    name = check_name(args.name)
    store = open_store(args)
    if store.exists(name) and not args.force:
        raise error(f"a learned style named {name!r} exists already in {store.root}: choose "
                    "another name, or replace it with --force")
    store.check_room(name, incoming=1 << 20)
    style = load_image(args.style, "style")
    vgg_path = _vgg_path(args, error)
    photo_files = _photo_files(args, error)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = LearnConfig()
    if args.steps is not None:
        if args.steps < 1:
            parser.error(f"--steps must be at least 1, got {args.steps}")
        cfg = replace(cfg, steps=args.steps)
    random.Random(cfg.seed).shuffle(photo_files)
    loaded = load_weights(weights)
    if name in loaded.presets:
        raise error(f"{name!r} is a built-in preset of these weights: choose another name")
    if loaded.net.inspiration_skip:
        raise error("these weights have an Inspiration skip; learning supports the plain "
                    "layout only")
    store.check_writable()
    photos = PhotoCrops([load_image(p, "photo") for p in photo_files[:cfg.pool]], cfg)
    vgg = Vgg16Features.from_file(vgg_path)
    from tqdm import tqdm

    with tqdm(total=cfg.steps, desc=f"learning {name}", unit="step", dynamic_ncols=True) as bar:
        def progress(step: int, steps: int, figures: dict) -> None:
            bar.update(1)
            bar.set_postfix(style=f"{figures['style_ratio']:.2f}",
                            content=f"{figures['content_ratio']:.2f}")

        result = learn_style(loaded.net, vgg, style, photos, cfg, progress)
    info = {"style_file": args.style.name, "seconds": round(result.seconds, 1),
            "style_ratio": round(result.style_ratio, 3),
            "content_ratio": round(result.content_ratio, 3), "config": result.config,
            "weights": str(weights)}
    path = store.save(name, result.target, weights_fingerprint(loaded.net.state_dict()),
                      info=info, thumbnail=style, overwrite=args.force)
    print(f"learned {name!r} in {result.seconds:.1f} s -> {path}\n"
          f"use it: python -m msgnet stylize PHOTO --preset {name} -o OUT.jpg")
    return 0


def cmd_forget(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    store = open_store(args)
    store.delete(check_name(args.name))
    print(f"deleted {args.name!r} from {store.root}")
    return 0
