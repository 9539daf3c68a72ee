"""What one request is answered with: inference's :class:`Result`, encoded into an
:class:`Answer` (the body, its content type and headers) that postprocess hands to TorchServe.

Keeping the encoding here, apart from inference, is what lets ``inference`` return images and
``postprocess`` do nothing but encode: a stylized tensor or contact sheet becomes JPEG or PNG,
a clip keeps the bytes its encoder made, an answer made earlier (an action's, a streamed
line) passes through, and an exception becomes that request's JSON error
(:mod:`handler.errors`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

from msgnet import imageio
from msgnet.animation.stylize import ClipResult

JSON_TYPE = "application/json"
NDJSON_TYPE = "application/x-ndjson"   # streamed progress lines (clips, learning)
PROGRESS_MIN_S = 1.0                   # at most one progress line a second
BATCH_HEADER = "X-Msgnet-Batch-Size"
CACHE_HEADER = "X-Msgnet-Style-Cache"  # preset | hit | miss (miss if any style missed)
SHEET_HEADER = "X-Msgnet-Sheet"        # the sheet's cell labels in order, comma-separated
CLIP_HEADER = "X-Msgnet-Clip"          # frames=N;fps=F;seconds=S;size=WxH;audio=...


@dataclass(frozen=True)
class Answer:
    """A request's answer as TorchServe sends it."""

    body: bytes | str
    content_type: str = JSON_TYPE
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Result:
    """What inference made of one request.

    ``value`` is a stylized tensor ((1, 3, h, w) BGR 0..255), a contact sheet
    (``PIL.Image``), a :class:`msgnet.animation.stylize.ClipResult`, an :class:`Answer`
    made already, or the exception that request alone answers with. ``error`` is an error
    already answered in-band (a streamed fit's last line) that the metrics still count.
    """

    value: object
    fmt: str = "jpeg"                                       # for an image
    headers: dict[str, str] = field(default_factory=dict)   # set whatever the answer
    error: BaseException | None = None


def encode(result: Result, jpeg_quality: int) -> Answer:
    """The answer for a result; an exception is raised for the caller to answer."""
    value = result.value
    if isinstance(value, BaseException):
        raise value
    if isinstance(value, Answer):
        return value
    if isinstance(value, ClipResult):
        return Answer(value.body, value.content_type, {CLIP_HEADER: clip_header(value)})
    image = value if isinstance(value, Image.Image) else imageio.bgr_to_image(value)
    body, content_type = imageio.encode_image(image, fmt=result.fmt, quality=jpeg_quality)
    return Answer(body, content_type)


def megapixels(results: list[Result]) -> float:
    """Output megapixels stylized in a batch (a clip counts every frame)."""
    total = 0.0
    for result in results:
        value = result.value
        if isinstance(value, ClipResult):
            total += value.width * value.height * value.frames / 1e6
        elif isinstance(value, Image.Image):
            total += value.width * value.height / 1e6
        elif hasattr(value, "shape"):  # a stylized tensor
            total += int(value.shape[-2]) * int(value.shape[-1]) / 1e6
    return total


def clip_header(result: ClipResult) -> str:
    return (f"frames={result.frames};fps={result.fps:.3f};seconds={result.seconds:.3f};"
            f"size={result.width}x{result.height};audio={result.audio}")
