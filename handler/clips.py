"""The animated path of the handler: a GIF or video as ``content`` is stylized frame by frame
(:func:`msgnet.animation.stylize.stylize_clip`) and answered with the encoded animation.

A clip is one request but hundreds of forward passes, so it never joins the photos' batched
run: photos of the same server-side batch are stylized first, then each clip on its own.
Keeping photos from waiting behind a clip at all is the deployment's part: ``scripts/serve.sh``
registers the same archive a second time as ``msgnet_clip`` (its own worker process), and the
bot sends clips there (docs/serving.md has the measurement).

A clip with a ``cancel_token`` stops between two chunks of frames once a cancel request has
named that token (:mod:`handler.cancel`), and is answered 409 ``cancelled``.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from handler import errors
from handler.answers import NDJSON_TYPE, PROGRESS_MIN_S, Answer, Result, clip_header
from handler.cancel import CancelBox
from handler.settings import HandlerSettings
from msgnet.animation.decode import is_clip
from msgnet.animation.stylize import ClipCancelled, ClipResult, stylize_clip
from msgnet.inference.controls import Controls

if TYPE_CHECKING:
    from handler.parsing import StylizeRequest

log = logging.getLogger(__name__)


@dataclass
class ClipJob:
    """A clip request waiting for its frames to be stylized."""

    idx: int
    data: bytes
    target: torch.Tensor
    size: int
    controls: Controls
    progress: bool = False  # stream {"done", "total"} lines, then the clip as base64 JSON
    cancel_token: str | None = None  # a cancel request naming it stops the clip
    headers: dict[str, str] = field(default_factory=dict)  # the style cache's state


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


def run_clip(stylizer, job: ClipJob, settings: HandlerSettings,
             progress: Callable[[int, int], None] | None = None,
             should_stop: Callable[[], bool] | None = None) -> ClipResult:
    """Stylize one clip; its errors carry ``code``/``http_status`` (msgnet.animation.limits), and
    the message names the field; ``should_stop`` is asked before each chunk of frames."""
    try:
        with torch.inference_mode():
            return stylize_clip(job.data, stylizer, job.target, size=job.size,
                                controls=job.controls, reference=settings.clip_reference,
                                limits=settings.clip_limits(), progress=progress,
                                should_stop=should_stop)
    except ClipCancelled as exc:  # the client's own doing, not the content's
        log.info("clip request %d cancelled: %s", job.idx, exc)
        raise errors.RequestError(exc.http_status, exc.code,
                                  f"cancelled by a cancel request: {exc}") from exc
    except Exception as exc:
        err = errors.from_exception(exc)
        if err.code == errors.INTERNAL_ERROR:
            log.exception("clip request %d failed", job.idx)
            raise err from exc
        raise errors.RequestError(err.status, err.code, f"content: {err.message}",
                                  "content") from exc


def answer_clip(stylizer, job: ClipJob, settings: HandlerSettings, cancels: CancelBox,
                stream: ProgressStream | None) -> Result:
    """One clip, cancellable when it carries a token; once a progress line has gone (the
    HTTP status with it) its clip or error is answered in-band as the last line."""
    token = job.cancel_token
    if token is not None:
        cancels.sweep()
    try:
        result: ClipResult | BaseException = run_clip(
            stylizer, job, settings, progress=stream,
            should_stop=cancels.should_stop(token) if token else None)
    except Exception as exc:
        result = exc
    finally:
        if token is not None:  # cancelled, or a cancel that came too late
            cancels.clear(token)
    if stream is not None and stream.sent:
        return Result(Answer(stream.final(result), NDJSON_TYPE), headers=job.headers)
    return Result(result, headers=job.headers)


class ProgressStream:
    """Progress of one clip as TorchServe intermediate responses (HTTP chunks): one JSON line
    ``{"done": k, "total": n}`` at most every :data:`PROGRESS_MIN_S`, then
    :meth:`final` answers with one line holding the clip (base64) or the error. Only for a
    request alone in its batch (the clip model has batch size 1): an intermediate response
    speaks for the whole batch."""

    def __init__(self, context: Any, idx: int,
                 send: Callable[..., None] | None = None):
        if send is None:
            from ts.protocol.otf_message_handler import send_intermediate_predict_response

            send = send_intermediate_predict_response
        self.context, self.idx, self._send = context, idx, send
        self._last = 0.0
        self.sent = 0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if done < total and now - self._last < PROGRESS_MIN_S:
            return
        self._last = now
        self.context.set_response_content_type(self.idx, NDJSON_TYPE)
        line = json.dumps({"done": done, "total": total}) + "\n"
        self._send([line], self.context.request_ids, "Intermediate Prediction success", 200,
                   self.context)
        self.sent += 1

    def final(self, result: ClipResult | BaseException) -> str:
        """The last line: the clip, or the error (the HTTP status is already 200)."""
        if isinstance(result, BaseException):
            err = errors.from_exception(result)
            return json.dumps({"status": err.status, "code": err.code, "message": err.message,
                               **({"field": err.field} if err.field else {})}) + "\n"
        return json.dumps({"status": 200, "content_type": result.content_type,
                           "clip": clip_header(result),
                           "body": base64.b64encode(result.body).decode("ascii")}) + "\n"
