"""TorchServe handler for MSG-Net style transfer (the REST contract is in docs/serving.md).

One call of :meth:`MsgnetHandler.handle` receives a server-side batch and runs TorchServe's
three phases over it, each request on its own so that a bad one only gets its own 4xx JSON:

* :meth:`~MsgnetHandler.preprocess` parses each request (:mod:`handler.parsing`) and decodes
  its inputs (:mod:`handler.inputs`). An action needs no model, so it is answered here
  (:mod:`handler.actions`), as TorchServe answers ``describe`` outside the phases;
* :meth:`~MsgnetHandler.inference` stylizes: the photos together in runs of a bounded pixel
  budget, retried one by one if a run fails (:mod:`handler.batching`), then each contact
  sheet, each clip (:mod:`handler.clips`) and each fit of a style (:mod:`handler.learning`);
  it returns one :class:`handler.answers.Result` per request;
* :meth:`~MsgnetHandler.postprocess` encodes each result (:mod:`handler.answers`) and writes
  its status, content type and headers.

A ``style_id`` that is no preset of the weights names one of the requester's learned styles
(``owner``; :mod:`handler.learned`). On the ``msgnet_learn`` model the same handler learns
styles (``action=learn``). The model code lives in the ``msgnet`` package, shipped inside the
.mar next to this file.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from ts.torch_handler.base_handler import BaseHandler

from handler import actions, errors
from handler.actions import ActionRequest, CancelRequest
from handler.answers import (
    BATCH_HEADER,
    JSON_TYPE,
    SHEET_HEADER,
    Answer,
    Result,
    encode,
    megapixels,
)
from handler.batching import Job, SheetJob, run_in_budget
from handler.cancel import CancelBox
from handler.clips import ClipJob, ProgressStream, answer_clip
from handler.fields import wants_progress
from handler.inputs import Inputs
from handler.learned import LearnedStyles, open_store
from handler.learning import Learner, LearnJob, LearnRequest, LearnStream, streams
from handler.metrics import HandlerMetrics
from handler.parsing import SheetRequest, parse_request
from handler.settings import HandlerSettings
from handler.style_cache import StyleCache
from msgnet import imageio
from msgnet.inference.controls import Controls
from msgnet.inference.sheet import contact_sheet, sheet_names
from msgnet.inference.stylize import Stylizer
from msgnet.model.checkpoint import LoadedWeights, load_weights

log = logging.getLogger(__name__)

# what preprocess makes of a request: work for inference, an answer made already, or its error
Prepared = Job | SheetJob | ClipJob | LearnJob | Answer | BaseException


class MsgnetHandler(BaseHandler):
    """Stylizes content images with a style image, a style tensor or a shipped preset."""

    def __init__(self) -> None:
        super().__init__()
        self.settings = HandlerSettings()
        self.cache: StyleCache[torch.Tensor] = StyleCache(0)
        self.stylizer: Stylizer | None = None
        self.inputs: Inputs | None = None
        self.weights: LoadedWeights | None = None
        self.weights_file = ""
        self.model_dir = Path(".")
        self.version = ""
        self.metrics = HandlerMetrics(None, "msgnet")
        self.warmup_s: float | None = None
        # how clip progress lines leave (None: TorchServe's intermediate responses)
        self.progress_send = None
        self.cancels = CancelBox()  # cancelled clips' tokens, shared with the other workers
        self.store = open_store(self.settings)  # learned styles, shared by every worker
        self.learned = LearnedStyles(self.store, self.cache)
        self.learner = Learner(self.settings)  # fits styles on the msgnet_learn model only

    # ---------------------------------------------------------------- loading
    def initialize(self, context: Any) -> None:
        """Load the weights named in the manifest (not BaseHandler's TorchScript loader)."""
        properties = context.system_properties
        self.context = context
        self.manifest = context.manifest
        self.model_dir = Path(properties.get("model_dir") or ".")
        model_yaml = context.model_yaml_config or {}
        self.settings = HandlerSettings.from_model_yaml(model_yaml)
        threads = self.settings.torch_threads(model_yaml)
        torch.set_num_threads(threads)
        gpu = properties.get("gpu_id")
        device = f"cuda:{gpu}" if gpu is not None and torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)

        model_info = self.manifest.get("model", {})
        serialized = model_info.get("serializedFile")
        if not serialized:
            raise RuntimeError("the .mar has no serialized file: build it with "
                               "scripts/build_mar.py --weights PATH")
        self.weights_file = serialized
        self.weights = load_weights(self.model_dir / serialized, map_location="cpu")
        self.stylizer = Stylizer(self.weights, device=device, max_size=self.settings.max_size,
                                 default_size=self.settings.default_size,
                                 default_style_size=self.settings.default_style_size or None,
                                 variant=self.settings.variant,
                                 tiling=self.settings.tile_config())
        # requests default to the style size the Stylizer resolved (0 = from the weights)
        self.settings = replace(self.settings,
                                default_style_size=self.stylizer.default_style_size)
        # the first request would otherwise pay for kernel set-up and heap growth (~0.3 s)
        self.warmup_s = self.stylizer.warm_up() if self.settings.warmup else None
        self.cache = StyleCache(self.settings.cache_size)
        self.store = open_store(self.settings)
        self.learned = LearnedStyles(self.store, self.cache)
        self.inputs = Inputs(self.stylizer, self.settings, self.cache, self.learned)
        self.learner = Learner(self.settings)
        self.learner.load(self.settings, self.stylizer.net)
        self.cancels = CancelBox(self.settings.cancel_dir or None)
        try:
            self.cancels.ensure()
        except OSError as exc:  # photos and clips still work; cancel requests answer 500
            log.error("the cancel folder is unusable, clips cannot be cancelled: %s", exc)
        self.version = str(model_info.get("modelVersion", ""))
        self.metrics = HandlerMetrics(context.metrics, context.model_name)
        self.initialized = True
        log.info("msgnet handler ready: version=%s weights=%s layout=%s presets=%d device=%s "
                 "threads=%d variant=%s max_size=%d tile_pixels=%d warm-up=%s style store=%s "
                 "learn=%s msgnet=%s",
                 self.version, serialized, self.weights.layout,
                 len(self.stylizer.preset_names()), device, threads, self.stylizer.variant_name,
                 self.settings.max_size, self.settings.tile_pixels,
                 "off" if self.warmup_s is None else f"{self.warmup_s:.2f} s", self.store.root,
                 ("off" if not self.learner.enabled
                  else self.learner.unavailable or "ready"), imageio.__file__)

    # ---------------------------------------------------------------- serving
    def handle(self, data: list[dict], context: Any) -> list[bytes | str]:
        """TorchServe's three phases over one server-side batch, and the batch's metrics."""
        self.context = context
        if self._is_describe():
            return [self.describe_handle()]
        hits, misses = self.cache.hits, self.cache.misses
        requests = self.preprocess(data)
        started = time.perf_counter()
        results = self.inference(requests)
        inference_ms = (time.perf_counter() - started) * 1000.0
        answers = self.postprocess(results)
        for idx in range(len(data)):
            context.set_response_header(idx, BATCH_HEADER, str(len(data)))
        self.metrics.batch(size=len(data), inference_ms=inference_ms,
                           megapixels=megapixels(results), cache_hits=self.cache.hits - hits,
                           cache_misses=self.cache.misses - misses)
        return answers

    def describe_handle(self) -> str:
        """TorchServe's ``describe`` request: the presets listing."""
        return json.dumps(actions.presets_listing(self))

    def preprocess(self, data: list[dict]) -> list[Prepared]:
        """Each request parsed and decoded on its own: a bad one keeps its error."""
        prepared: list[Prepared] = []
        for idx, fields in enumerate(data):
            try:
                prepared.append(self._prepare(idx, fields or {}, alone=len(data) == 1))
            except Exception as exc:  # one bad request answers alone
                prepared.append(exc)
        return prepared

    def _prepare(self, idx: int, fields: dict, alone: bool) -> Prepared:
        request = parse_request(fields, self.settings)
        if isinstance(request, (ActionRequest, CancelRequest)):
            return actions.answer(request, self)
        if isinstance(request, LearnRequest):
            return self.learner.prepare(idx, request, self.stylizer, self.store,
                                        self.inputs.decode, progress=alone and streams(fields))
        if isinstance(request, SheetRequest):
            return self.inputs.sheet(idx, request)
        # a clip's progress lines are intermediate responses, which speak for the whole
        # batch: a request alone in its batch only
        return self.inputs.stylize(idx, request, progress=alone and wants_progress(fields))

    def inference(self, requests: list[Prepared]) -> list[Result]:
        """One result per request: the photos in isolated batched runs of at most
        ``batch_pixels`` output pixels, then each contact sheet, then each clip (frame by
        frame: a clip must not hold up the photos batched with it), then each fit."""
        results: dict[int, Result] = {idx: Result(request) for idx, request
                                      in enumerate(requests)
                                      if isinstance(request, (Answer, BaseException))}
        photos = [job for job in requests if isinstance(job, Job)]
        for idx, output in run_in_budget(self.stylizer, photos,
                                         self.settings.batch_pixels).items():
            job = requests[idx]
            results[idx] = Result(output, job.fmt, job.headers)
        for sheet in (job for job in requests if isinstance(job, SheetJob)):
            results[sheet.idx] = self._sheet(sheet)
        for clip in (job for job in requests if isinstance(job, ClipJob)):
            stream = (ProgressStream(self.context, clip.idx, self.progress_send)
                      if clip.progress else None)
            results[clip.idx] = answer_clip(self.stylizer, clip, self.settings, self.cancels,
                                            stream)
        for learn in (job for job in requests if isinstance(job, LearnJob)):
            stream = (LearnStream(self.context, learn.idx, self.progress_send)
                      if learn.progress else None)
            results[learn.idx] = self.learner.answer(learn, self.stylizer, self.store,
                                                     self.weights_file, self.cancels, stream)
        return [results[idx] for idx in range(len(requests))]

    def _sheet(self, sheet: SheetJob) -> Result:
        request = sheet.request
        try:
            image = contact_sheet(self.stylizer, sheet.photo, size=request.size,
                                  controls=Controls(strength=request.strength,
                                                    keep_colors=request.keep_colors))
        except Exception as exc:
            return Result(exc)
        return Result(image, request.fmt, {SHEET_HEADER: ",".join(sheet_names(self.stylizer))})

    def postprocess(self, results: list[Result]) -> list[bytes | str]:
        """Encode each result into its answer: body, status, content type and headers."""
        out: list[bytes | str] = []
        for idx, result in enumerate(results):
            for name, value in result.headers.items():
                self.context.set_response_header(idx, name, value)
            if result.error is not None:  # answered in-band already, counted all the same
                self._count_error(result.error)
            try:
                answer = encode(result, self.settings.jpeg_quality)
            except Exception as exc:
                answer = self._fail(idx, exc)
            self.context.set_response_content_type(idx, answer.content_type)
            for name, value in answer.headers.items():
                self.context.set_response_header(idx, name, value)
            out.append(answer.body)
        return out

    def _fail(self, idx: int, exc: BaseException) -> Answer:
        err = self._count_error(exc, idx)
        self.context.set_response_status(err.status, err.phrase, idx)
        return Answer(err.to_json(), JSON_TYPE)

    def _count_error(self, exc: BaseException, idx: int = -1) -> errors.RequestError:
        err = errors.from_exception(exc)
        if err.code == errors.INTERNAL_ERROR and err is not exc:
            log.error("request %d failed", idx, exc_info=exc)
        self.metrics.request_error(err.code)
        return err
