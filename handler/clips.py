"""The animated path of the handler: a GIF or video as ``content`` is stylized frame by frame
(:func:`msgnet.clip.stylize_clip`) and answered with the encoded animation.

A clip is one request but hundreds of forward passes, so it never joins the photos' batched
run: photos of the same server-side batch are stylized first, then each clip on its own.
Keeping photos from waiting behind a clip at all is the deployment's part: ``scripts/serve.sh``
registers the same archive a second time as ``msgnet_clip`` (its own worker process), and the
bot sends clips there (docs/serving.md has the measurement).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from handler import errors
from handler.parsing import StylizeRequest
from handler.settings import HandlerSettings
from msgnet.clip import ClipResult, stylize_clip
from msgnet.clip_decode import is_clip
from msgnet.controls import Controls

log = logging.getLogger(__name__)

CLIP_HEADER = "X-Msgnet-Clip"  # frames=N;fps=F;seconds=S;size=WxH;audio=...


@dataclass
class ClipJob:
    """A clip request waiting for its frames to be stylized."""

    idx: int
    data: bytes
    target: torch.Tensor
    size: int
    controls: Controls


def wants_clip(request: StylizeRequest) -> bool:
    """Whether the request's content is an animation or a video (images only; tensors are
    always stills)."""
    return request.content.kind == "image" and is_clip(request.content.data)


def clip_size(request: StylizeRequest, settings: HandlerSettings) -> int:
    """The clip's output size: the request's ``size`` when given, else ``clip_size``."""
    if not request.size_given:
        return settings.clip_size
    if request.size > settings.clip_max_size:
        raise errors.bad_option(f"size: a clip's longest side may be at most "
                                f"{settings.clip_max_size} px, got {request.size}", "size")
    return request.size


def run_clip(stylizer, job: ClipJob, settings: HandlerSettings) -> ClipResult:
    """Stylize one clip; its errors carry ``code``/``http_status`` (msgnet.clip_limits), and
    the message names the field."""
    try:
        with torch.inference_mode():
            return stylize_clip(job.data, stylizer, job.target, size=job.size,
                                controls=job.controls, reference=settings.clip_reference,
                                limits=settings.clip_limits())
    except Exception as exc:
        err = errors.from_exception(exc)
        if err.code == errors.INTERNAL_ERROR:
            log.exception("clip request %d failed", job.idx)
            raise err from exc
        raise errors.RequestError(err.status, err.code, f"content: {err.message}",
                                  "content") from exc


def clip_header(result: ClipResult) -> str:
    return (f"frames={result.frames};fps={result.fps:.3f};seconds={result.seconds:.3f};"
            f"size={result.width}x{result.height};audio={result.audio}")
