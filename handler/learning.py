"""Learning a style through REST: ``action=learn`` on the ``msgnet_learn`` model.

A fit (:func:`msgnet.learning.learn.learn_style`) holds its worker for about a minute, so it runs
on a model of its own, the way clips run on ``msgnet_clip``: ``scripts/learn_model.py`` registers
the same handler from an archive whose config sets ``handler.learn: 1`` (one worker, batch 1, a
long response timeout), and the photo model refuses learn requests. What a fit needs besides
the weights - the VGG16 loss network (``MSGNET_VGG``) and a folder of ordinary photos
(``MSGNET_LEARN_PHOTOS``) - is loaded once when that worker starts; without them every learn
request is answered 503 with the reason, and photos are served as always.

Everything a request can get wrong is checked before the fit: the name, the owner, the steps,
the style picture, a built-in or existing name, the store's caps and that the store can be
written. Then the answer streams (``application/x-ndjson``, one JSON object a line): a first
line as the fit starts, a progress line at most every second, and a final line with
``status`` - the learned style's figures, or the error. A learn request with a
``cancel_token`` stops after the step in flight once a cancel request names the token
(:mod:`handler.cancel`), and nothing is saved.
"""

from __future__ import annotations

import json
import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from PIL import Image

from handler import errors
from handler.answers import JSON_TYPE, NDJSON_TYPE, PROGRESS_MIN_S, Answer, Result
from handler.cancel import CancelBox
from handler.fields import Fields, Payload, store_name, wants_progress
from handler.learned import NAME_EXISTS, store_error
from handler.settings import HandlerSettings
from msgnet.inference.control_values import parse_bool
from msgnet.learning import style_store
from msgnet.learning.style_store import StyleStore

log = logging.getLogger(__name__)

LEARN_MODEL = "msgnet_learn"
LEARNING_UNAVAILABLE = "learning_unavailable"
WRONG_MODEL = "wrong_model"
CANCELLED = "cancelled"
MIN_PHOTOS = 4  # as msgnet.learning.cli
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
INCOMING_BYTES = 1 << 20  # what a new style is counted as before the fit (target + thumbnail)


class LearnCancelled(Exception):
    """A cancel request named the fit's token."""


@dataclass(frozen=True)
class LearnRequest:
    """``action=learn``: fit ``style`` as the learned style ``name`` of ``owner``."""

    style: Payload
    name: str
    owner: str = style_store.DEFAULT_OWNER
    # None: the measured default (msgnet.learning.learn.LearnConfig)
    steps: int | None = None
    overwrite: bool = False          # replace a learned style of that name
    cancel_token: str | None = None  # a cancel request naming it stops the fit


def parse_learn(fields: Fields, owner: str) -> LearnRequest:
    """``action=learn``: every field checked here, before the worker spends a minute."""
    raw_name = fields.text("name").strip()
    if not raw_name:
        raise errors.missing_field("action 'learn' needs a name to store the style under",
                                   "name")
    name = store_name(raw_name, "name")
    style = fields.payload("style")
    if style is None or style.kind != "image":
        raise errors.missing_field("action 'learn' needs the style picture as 'style' "
                                   "(an image)", "style")
    steps = None
    if fields.present("steps"):
        steps = fields.int_option("steps", 0, 1, fields.settings.learn_max_steps,
                                  unit="steps")
    overwrite = fields.control(parse_bool, "overwrite", False)
    return LearnRequest(style, name, owner, steps, overwrite, fields.token("cancel_token"))


def streams(raw: dict) -> bool:
    """A learn request streams its progress unless it sends ``progress=false``."""
    body = raw.get("body")
    given = "progress" in raw or (isinstance(body, dict) and "progress" in body)
    return wants_progress(raw) if given else True


@dataclass
class LearnJob:
    """A checked learn request: its decoded style picture, waiting for the fit."""

    idx: int
    request: LearnRequest
    style: Image.Image
    progress: bool = True  # stream lines (the default); false: one JSON answer at the end


class Learner:
    """The learn worker's loss network and photo crops, and the fit of one request."""

    def __init__(self, settings: HandlerSettings):
        self.enabled = bool(settings.learn)
        self.max_steps = settings.learn_max_steps
        self.vgg = None
        self.photos = None
        self.cfg = None
        self.unavailable = "" if self.enabled else "not a learn model"

    def load(self, settings: HandlerSettings, net) -> None:
        """Load the VGG16 file and the photos' crops; on failure keep the reason for the 503s
        (the worker still starts: photos must not depend on learning)."""
        if not self.enabled:
            return
        try:
            self._load(settings, net)
            self.unavailable = ""
            log.info("learning ready: VGG16 %s, %d photo crops from %s", settings.vgg,
                     self.photos.tensor.shape[0], settings.learn_photos)
        except Exception as exc:  # any failure means "not set up"; the reason is the message
            self.unavailable = str(exc)
            log.warning("learning is not available on this worker: %s", exc)

    def _load(self, settings: HandlerSettings, net) -> None:
        from msgnet.imageio import load_image
        from msgnet.learning.learn import LearnConfig, PhotoCrops
        from msgnet.learning.vgg import Vgg16Features

        if net.inspiration_skip:
            raise RuntimeError("the served weights have an Inspiration skip; learning "
                               "supports the plain layout only")
        if not settings.vgg or not Path(settings.vgg).is_file():
            log.warning("VGG16 loss network not found: %r (MSGNET_VGG)", settings.vgg)
            raise RuntimeError("the VGG16 loss network file is missing: the operator sets "
                               "MSGNET_VGG (docs/serving.md, 'Learning a style')")
        folder = Path(settings.learn_photos) if settings.learn_photos else None
        files = (sorted(p for p in folder.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES)
                 if folder is not None and folder.is_dir() else [])
        if len(files) < MIN_PHOTOS:
            log.warning("learning photos: %d in %r (MSGNET_LEARN_PHOTOS)", len(files),
                        settings.learn_photos)
            raise RuntimeError(f"the folder of photos to learn on is missing or holds fewer "
                               f"than {MIN_PHOTOS}: the operator sets MSGNET_LEARN_PHOTOS "
                               "(docs/serving.md, 'Learning a style')")
        cfg = LearnConfig()
        random.Random(cfg.seed).shuffle(files)
        self.photos = PhotoCrops([load_image(p) for p in files[:cfg.pool]], cfg)
        self.vgg = Vgg16Features.from_file(settings.vgg)
        self.cfg = cfg

    # ------------------------------------------------------------------ before the fit
    def prepare(self, idx: int, request: LearnRequest, stylizer, store: StyleStore,
                decode: Callable[[Payload, int], Image.Image], progress: bool) -> LearnJob:
        """Every check that can fail, in the order a user can act on; raises RequestError.
        ``progress``: stream lines (a request alone in its batch only)."""
        if not self.enabled:
            raise errors.RequestError(400, WRONG_MODEL, f"this model does not learn styles: "
                                      f"send action=learn to /predictions/{LEARN_MODEL}",
                                      "action")
        if self.unavailable:
            raise errors.RequestError(503, LEARNING_UNAVAILABLE, "this server is not set up "
                                      f"to learn styles: {self.unavailable}")
        style = decode(request.style, self.cfg.style_size)
        name, owner = request.name, request.owner
        if name in stylizer.presets:
            raise errors.RequestError(409, NAME_EXISTS, f"{name!r} is a built-in preset: "
                                      "choose another name", "name")
        try:
            if store.exists(name, owner) and not request.overwrite:
                raise errors.RequestError(409, NAME_EXISTS, f"you have a learned style named "
                                          f"{name!r} already: choose another name, or send "
                                          "overwrite=true", "name")
            store.check_room(name, owner, incoming=INCOMING_BYTES)
            store.check_writable(owner)
        except style_store.StyleStoreError as exc:
            raise store_error(exc) from exc
        except OSError as exc:  # the store's folder cannot even be listed
            raise store_error(style_store.StoreNotWritable(str(exc))) from exc
        return LearnJob(idx, request, style.convert("RGB"), progress)

    # ------------------------------------------------------------------ the fit, answered
    def answer(self, job: LearnJob, stylizer, store: StyleStore, weights_file: str,
               cancels: CancelBox, stream: LearnStream | None) -> Result:
        """One fit: streamed when asked, its result (or error) answered in-band once a line
        has gone (the HTTP status went with it)."""
        token = job.request.cancel_token
        if token is not None:
            cancels.sweep()
        try:
            if stream is not None:
                stream.start(job, job.request.steps or self.cfg.steps)
            result: dict | BaseException = self.run(
                job, stylizer, store, weights_file, progress=stream,
                should_stop=cancels.should_stop(token) if token else None)
        except Exception as exc:
            result = exc
        finally:
            if token is not None:
                cancels.clear(token)
        if stream is not None and stream.sent:
            error = result if isinstance(result, BaseException) else None
            return Result(Answer(stream.final(result), NDJSON_TYPE), error=error)
        if isinstance(result, BaseException):
            return Result(result)
        return Result(Answer(json.dumps(result), JSON_TYPE))

    # ------------------------------------------------------------------ the fit
    def run(self, job: LearnJob, stylizer, store: StyleStore, weights_file: str,
            progress: Callable[[int, int, dict], None] | None = None,
            should_stop: Callable[[], bool] | None = None) -> dict:
        """Fit, save, and return the result line; a cancel is a 409 ``cancelled``."""
        from msgnet.learning.learn import learn_style

        request = job.request
        cfg = replace(self.cfg, steps=request.steps or self.cfg.steps)

        def step(done: int, steps: int, figures: dict) -> None:
            if should_stop is not None and should_stop():
                raise LearnCancelled(f"stopped after {done} of {steps} steps")
            if progress is not None:
                progress(done, steps, figures)

        try:
            if should_stop is not None and should_stop():
                raise LearnCancelled("stopped before the first step")
            result = learn_style(stylizer.net, self.vgg, job.style, self.photos, cfg, step)
        except LearnCancelled as exc:
            log.info("learn request %d (%s) cancelled: %s", job.idx, request.name, exc)
            raise errors.RequestError(409, CANCELLED, f"cancelled by a cancel request: {exc}; "
                                      "nothing was saved") from exc
        info = {"source": "rest", "seconds": round(result.seconds, 1),
                "style_ratio": _rounded(result.style_ratio),
                "content_ratio": _rounded(result.content_ratio), "config": result.config,
                "weights": weights_file}
        try:
            store.save(request.name, result.target, stylizer.fingerprint, owner=request.owner,
                       info=info, thumbnail=job.style, overwrite=request.overwrite)
        except style_store.StyleStoreError as exc:
            raise store_error(exc) from exc
        log.info("learned %s for %s in %.1f s (%d steps)", request.name, request.owner,
                 result.seconds, result.steps)
        return {"status": 200, "name": request.name, "owner": request.owner,
                "seconds": round(result.seconds, 2), "steps": result.steps,
                "style_ratio": _rounded(result.style_ratio),
                "content_ratio": _rounded(result.content_ratio),
                "content_weight": _rounded(result.content_weight)}


def _rounded(value: float) -> float | None:
    """A figure for JSON (NaN is not JSON)."""
    return round(value, 4) if math.isfinite(value) else None


class LearnStream:
    """A fit's answer as TorchServe intermediate responses: ``{"step": 0, "steps": n, "name":
    ...}`` as it starts, ``{"step": k, "steps": n, "style_ratio": ..., "content_ratio": ...}``
    at most every :data:`PROGRESS_MIN_S`, and :meth:`final`'s line last. Only
    for a request alone in its batch (the learn model has batch size 1)."""

    def __init__(self, context: Any, idx: int, send: Callable[..., None] | None = None):
        if send is None:
            from ts.protocol.otf_message_handler import send_intermediate_predict_response

            send = send_intermediate_predict_response
        self.context, self.idx, self._send = context, idx, send
        self._last = 0.0
        self.sent = 0

    def start(self, job: LearnJob, steps: int) -> None:
        self._line({"step": 0, "steps": steps, "name": job.request.name,
                    "owner": job.request.owner})

    def __call__(self, step: int, steps: int, figures: dict) -> None:
        import time

        now = time.monotonic()
        if step < steps and now - self._last < PROGRESS_MIN_S:
            return
        self._last = now
        self._line({"step": step, "steps": steps,
                    **{k: _rounded(float(v)) for k, v in figures.items()}})

    def _line(self, obj: dict) -> None:
        self.context.set_response_content_type(self.idx, NDJSON_TYPE)
        self._send([json.dumps(obj) + "\n"], self.context.request_ids,
                   "Intermediate Prediction success", 200, self.context)
        self.sent += 1

    @staticmethod
    def final(result: dict | BaseException) -> str:
        """The last line: the result, or the error (the HTTP status is already 200)."""
        if isinstance(result, BaseException):
            err = errors.from_exception(result)
            return json.dumps({"status": err.status, "code": err.code, "message": err.message,
                               **({"field": err.field} if err.field else {})}) + "\n"
        return json.dumps(result) + "\n"
