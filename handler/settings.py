"""Handler settings read from the ``handler:`` section of the archive's model-config.yaml.

TorchServe hands the parsed YAML to the worker as ``context.model_yaml_config``; keeping the
limits there means one archive carries its own serving policy (sizes, cache, threads), and a
bad value fails the model load with a message instead of surfacing later as odd 4xx answers.
An environment variable ``MSGNET_<FIELD>`` (e.g. ``MSGNET_MAX_SIZE=4096``) set for TorchServe
overrides the archive's value, so a deployment can change a limit without rebuilding the .mar;
``MSGNET_THREADS`` only where the archive leaves ``threads`` automatic (0). The learned
styles' folder and what learning needs come the same way: ``MSGNET_STYLE_STORE``,
``MSGNET_VGG`` and ``MSGNET_LEARN_PHOTOS`` (the names the ``python -m msgnet learn`` CLI reads).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields

from msgnet.animation.limits import ClipLimits
from msgnet.animation.stats import REFERENCES
from msgnet.inference.tiling import TileConfig
from msgnet.inference.variants import DEFAULT_VARIANT, VARIANTS

MIB = 1024 * 1024
STANDARD_SIZES = (512, 768, 1024, 1536, 2048, 3072, 4096)
MAX_OUTPUT_SIZE = 4096  # tiled inference keeps 4096 px within ~2.5 GB; beyond is untested
ENV_PREFIX = "MSGNET_"
STRING_FIELDS = ("variant", "clip_reference", "cancel_dir", "style_store", "vgg",
                 "learn_photos")
PATH_FIELDS = ("cancel_dir", "style_store", "vgg", "learn_photos")  # absolute, or "" (default)
# fields whose environment variable only replaces the archive's automatic value (0): the
# clip archive's one torch thread (scripts/clip_model.py) holds although a container sets
# MSGNET_THREADS for the photo worker, which would otherwise count the host's cores
ARCHIVE_WINS = ("threads",)
# fields only the archive sets: the variables of a TorchServe reach every model's workers, and
# only the msgnet_learn archive (scripts/learn_model.py) may take learn requests
ARCHIVE_ONLY = ("learn",)


@dataclass(frozen=True)
class HandlerSettings:
    """Serving limits; every field can be set under ``handler:`` in model-config.yaml."""

    max_size: int = 2048           # longest side of an output, in pixels (<= 4096)
    default_size: int = 512        # used when the request gives no ``size``
    min_size: int = 64             # smaller outputs are too small for the 4x down/up-sampling
    # longest side an uploaded style is encoded at; 0: the size the weights' encoder was
    # trained at (their ``style_encoder_size``: 256 for ours, 512 for the authors' file)
    default_style_size: int = 0
    cache_size: int = 64           # style targets kept (LRU by style bytes + style size)
    max_bytes: int = 20 * MIB      # per uploaded image (after base64 decoding)
    max_pixels: int = 50_000_000   # decompression-bomb guard for decoded inputs
    jpeg_quality: int = 92
    threads: int = 0               # torch intra-op threads; 0 = CPU cores / maxWorkers
    variant: str = DEFAULT_VARIANT  # inference implementation (msgnet.inference.variants)
    tile_pixels: int = 1024 * 1024  # outputs with more pixels run tiled (bounded memory)
    # output pixels of one forward pass: a server-side batch above it is split (0: never);
    # the same bound as tiling, so a batch costs no more memory than one image at the cap
    batch_pixels: int = 1024 * 1024
    tile_size: int = 512           # core side of a tile
    thumb_size: int = 768          # longest side of the thumbnail the tiles' statistics use
    warmup: int = 1                # 1: one forward at default_size while the worker loads
    # animated contents (GIF, WebP, APNG, MP4/WebM/MOV; msgnet.animation.limits): refused over
    # these, frames above clip_max_fps dropped, output clip_size px unless ``size`` is given
    clip_max_seconds: int = 15
    clip_max_frames: int = 300
    clip_max_fps: int = 15
    clip_size: int = 480
    clip_max_size: int = 720
    clip_reference: str = "first"  # instance-norm statistics: first | running | off
    # the folder the photo and clip workers share for cancelled clips' tokens (an absolute
    # path; "": <temp dir>/msgnet-cancel; handler/cancel.py)
    cancel_dir: str = ""
    # learned styles (msgnet.learning.style_store), shared by every worker: an absolute folder, or
    # "" for msgnet.learning.style_store.default_root() ($XDG_DATA_HOME/msgnet/styles, as the CLI)
    style_store: str = ""
    store_max_per_owner: int = 20           # learned styles one owner may keep
    store_max_bytes: int = 512 * MIB        # the whole store
    # learning (handler/learning.py), on the model whose archive sets learn: 1 (msgnet_learn)
    learn: int = 0
    vgg: str = ""            # the VGG16 loss network file (absolute); "": learning answers 503
    learn_photos: str = ""   # a folder of ordinary photos to learn on; "": learning answers 503
    learn_max_steps: int = 400  # the most fit steps a request may ask for

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "variant":
                if value not in VARIANTS:
                    raise ValueError(f"handler.variant must be one of {sorted(VARIANTS)}, "
                                     f"got {value!r}")
                continue
            if f.name == "clip_reference":
                if value not in REFERENCES:
                    raise ValueError(f"handler.clip_reference must be one of "
                                     f"{', '.join(REFERENCES)}, got {value!r}")
                continue
            if f.name in PATH_FIELDS:
                if not isinstance(value, str) or (value and not os.path.isabs(value)):
                    raise ValueError(f"handler.{f.name} must be an absolute path or empty "
                                     f"(its default), got {value!r}")
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"handler.{f.name} must be a non-negative integer, got {value!r}")
        if self.max_size > MAX_OUTPUT_SIZE:
            raise ValueError(f"handler.max_size may be at most {MAX_OUTPUT_SIZE}, "
                             f"got {self.max_size}")
        try:
            self.tile_config()
        except ValueError as exc:
            raise ValueError(f"handler tiling settings: {exc}") from None
        if not 16 <= self.min_size <= self.default_size <= self.max_size:
            raise ValueError("handler sizes must satisfy 16 <= min_size <= default_size <= "
                             f"max_size, got {self.min_size}, {self.default_size}, "
                             f"{self.max_size}")
        if self.default_style_size and not (
                self.min_size <= self.default_style_size <= self.max_size):
            raise ValueError("handler.default_style_size must be 0 (from the weights) or lie "
                             "in [min_size, max_size]")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError("handler.jpeg_quality must lie in 1..100")
        if self.warmup not in (0, 1):
            raise ValueError(f"handler.warmup must be 0 or 1, got {self.warmup}")
        if self.max_bytes == 0 or self.max_pixels == 0:
            raise ValueError("handler.max_bytes and handler.max_pixels must be positive")
        try:
            self.clip_limits()
        except ValueError as exc:
            raise ValueError(f"handler clip settings: {exc}") from None
        if self.learn not in (0, 1):
            raise ValueError(f"handler.learn must be 0 or 1, got {self.learn}")
        if not self.learn_max_steps or not self.store_max_per_owner or not self.store_max_bytes:
            raise ValueError("handler.learn_max_steps, store_max_per_owner and store_max_bytes "
                             "must be positive")
        if not self.min_size <= self.clip_size:
            raise ValueError("handler.clip_size must be at least min_size")

    @classmethod
    def from_model_yaml(cls, model_yaml: dict | None,
                        environ: dict[str, str] | None = None) -> HandlerSettings:
        """Build from the whole model-config.yaml dict, then ``MSGNET_<FIELD>`` variables
        (``environ`` defaults to ``os.environ``); unknown YAML keys are an error."""
        section = dict((model_yaml or {}).get("handler") or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(section) - known)
        if unknown:
            raise ValueError(f"unknown key(s) in model-config.yaml handler section: {unknown}; "
                             f"known: {sorted(known)}")
        environ = os.environ if environ is None else environ
        for f in fields(cls):
            raw = environ.get(ENV_PREFIX + f.name.upper())
            if raw is None or raw.strip() == "":
                continue
            if f.name in ARCHIVE_ONLY or (f.name in ARCHIVE_WINS and section.get(f.name)):
                continue
            if f.name in STRING_FIELDS:
                section[f.name] = raw.strip()
                continue
            try:
                section[f.name] = int(raw)
            except ValueError:
                raise ValueError(f"{ENV_PREFIX}{f.name.upper()} must be an integer, "
                                 f"got {raw!r}") from None
        return cls(**section)

    def clip_limits(self) -> ClipLimits:
        """The limits a clip is checked against (reported in the presets answer)."""
        return ClipLimits(max_seconds=float(self.clip_max_seconds),
                          max_frames=self.clip_max_frames, max_fps=float(self.clip_max_fps),
                          size=self.clip_size, max_size=self.clip_max_size,
                          max_bytes=self.max_bytes)

    def tile_config(self) -> TileConfig:
        """When and how large outputs are tiled (see msgnet.inference.tiling)."""
        return TileConfig(threshold_pixels=self.tile_pixels, tile=self.tile_size,
                          thumb_size=self.thumb_size)

    @property
    def sizes(self) -> list[int]:
        """Suggested output sizes for clients (e.g. the bot's size menu); any size in
        [min_size, max_size] is accepted."""
        picks = [s for s in STANDARD_SIZES if self.min_size <= s <= self.max_size]
        if self.default_size not in picks:
            picks.append(self.default_size)
        return sorted(picks)

    def torch_threads(self, model_yaml: dict | None = None, cpu_count: int | None = None) -> int:
        """Threads per worker so that all workers together use each core once."""
        if self.threads:
            return self.threads
        cores = cpu_count or len(os.sched_getaffinity(0)) or 1
        workers = int((model_yaml or {}).get("maxWorkers") or 1)
        return max(1, cores // max(1, workers))
