"""Register the archive a third time as ``msgnet_learn``: a worker of its own that learns styles.

Learning a style (``action=learn``, handler/learning.py) holds a worker for about a minute. On
the photo model every photo queued behind it would wait that long, so - as clips run on
``msgnet_clip`` (scripts/clip_model.py) - it runs on a model of its own: one worker, batch 1,
a response timeout long enough for a fit. Its archive ``msgnet_learn.mar`` is the photo
archive with :data:`LEARN_OVERRIDES` in its model-config.yaml, among them ``handler.learn: 1``
(only that archive takes learn requests; the photo model refuses them).

A fit needs the VGG16 loss network and a folder of ordinary photos, which are not in the
archive: ``MSGNET_VGG`` and ``MSGNET_LEARN_PHOTOS`` in TorchServe's environment. ``check``
says whether they are there (scripts/serve.sh registers the model only then, and says why not
otherwise); the photo and clip models never depend on them.

    python -m scripts.learn_model build [--weights W] [--version V] [--output-dir model_store]
    python -m scripts.learn_model check          # exit 1 with the reason when not set up
    python -m scripts.learn_model register [--config config.properties]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from scripts.clip_model import PHOTO_CONFIG, build_archive, register, write_derived_config
from tsclient import ROOT, Endpoints

LEARN_MODEL = "msgnet_learn"  # handler.learning.LEARN_MODEL
LEARN_RESPONSE_TIMEOUT_S = 600  # a default fit is ~1 min on 2 cores; 400 steps ~5 min
MIN_PHOTOS = 4
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
# one fit at a time and one waiting (jobQueueSize 1): each holds up to max_request_size of
# JVM heap while it waits (docs/reliability.md, "Memory bounds")
LEARN_OVERRIDES = {"batchSize": 1, "maxBatchDelay": 0, "minWorkers": 1, "maxWorkers": 1,
                   "jobQueueSize": 1, "responseTimeout": LEARN_RESPONSE_TIMEOUT_S,
                   "clientTimeoutInMills": LEARN_RESPONSE_TIMEOUT_S * 1000}
# no warm-up forward: the learn worker stylizes nothing, and starts sooner without it
LEARN_HANDLER = {"learn": 1, "warmup": 0}


def write_learn_config(dest: Path, source: Path = PHOTO_CONFIG) -> Path:
    """The photo config with :data:`LEARN_OVERRIDES`; rewritten only when it changes."""
    return write_derived_config(dest, LEARN_OVERRIDES, LEARN_HANDLER, "scripts/learn_model.py",
                                source)


def build(output_dir: Path, extra: list[str], source: Path = PHOTO_CONFIG) -> Path:
    """``msgnet_learn.mar`` in ``output_dir`` (only when stale), through scripts.build_mar."""
    config = write_learn_config(output_dir / f"{LEARN_MODEL}-config.yaml", source)
    return build_archive(LEARN_MODEL, config, output_dir, extra)


def not_set_up(environ: dict[str, str] | None = None) -> str:
    """Why learning cannot run with these variables ("" when it can)."""
    env = os.environ if environ is None else environ
    vgg, photos = env.get("MSGNET_VGG", ""), env.get("MSGNET_LEARN_PHOTOS", "")
    if not vgg:
        return "MSGNET_VGG (the VGG16 loss network file) is not set"
    if not os.path.isabs(vgg) or not Path(vgg).is_file():
        return f"MSGNET_VGG={vgg} is not an absolute path to a file"
    if not photos:
        return "MSGNET_LEARN_PHOTOS (a folder of ordinary photos to learn on) is not set"
    folder = Path(photos)
    if not os.path.isabs(photos) or not folder.is_dir():
        return f"MSGNET_LEARN_PHOTOS={photos} is not an absolute path to a folder"
    count = sum(1 for p in folder.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES)
    if count < MIN_PHOTOS:
        return f"MSGNET_LEARN_PHOTOS={photos} holds {count} photos; learning needs {MIN_PHOTOS}"
    return ""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("command", choices=["build", "check", "register"])
    p.add_argument("--config", type=Path, default=None, help="register: config.properties")
    p.add_argument("--key-file", type=Path, default=None)
    p.add_argument("--mar", default=f"{LEARN_MODEL}.mar", help="register: archive in the store")
    p.add_argument("--name", default=LEARN_MODEL)
    p.add_argument("--output-dir", type=Path, default=ROOT / "model_store", help="build")
    p.add_argument("--weights", default=None, help="build: as scripts.build_mar")
    p.add_argument("--version", default=None, help="build: as scripts.build_mar")
    args = p.parse_args(argv)
    if args.command == "build":
        extra = [flag for name in ("weights", "version") if getattr(args, name)
                 for flag in (f"--{name}", getattr(args, name))]
        print(build(args.output_dir, extra))
        return 0
    if args.command == "check":
        reason = not_set_up()
        print(f"learning is not set up: {reason}" if reason else "learning is set up")
        return 1 if reason else 0
    print(register(Endpoints.from_config(args.config), args.key_file, args.mar, args.name,
                   timeout_s=LEARN_RESPONSE_TIMEOUT_S))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
