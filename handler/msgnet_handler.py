"""TorchServe handler for MSG-Net style transfer (the REST contract is in docs/serving.md).

One call of :meth:`MsgnetHandler.handle` receives a server-side batch and runs TorchServe's
phases over it. ``preprocess`` parses and decodes each request on its own, so a bad one only
gets its own 4xx JSON answer; ``inference`` stylizes the good ones together with
:meth:`msgnet.inference.stylize.Stylizer.run` (which groups equal shapes into one forward pass, so
mixed sizes and styles are fine), retrying them one by one if that batched run fails so that a
single failure cannot take its neighbours down; ``postprocess`` encodes each answer.

A ``style_id`` that is no preset of the weights names one of the requester's learned styles
(``owner``; :mod:`handler.learned`). On the ``msgnet_learn`` model the same handler learns
styles (``action=learn``; :mod:`handler.learning`).

The model code lives in the ``msgnet`` package, shipped inside the .mar next to this file.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from ts.torch_handler.base_handler import BaseHandler

from handler import errors
from handler.batching import Batch, Job, SheetJob, run_in_budget
from handler.cancel import CancelBox
from handler.clips import (
    CLIP_HEADER,
    NDJSON_TYPE,
    ClipJob,
    ProgressStream,
    clip_header,
    clip_size,
    run_clip,
    wants_clip,
    wants_progress,
)
from handler.learned import LearnedStyles, forget_style, open_store, rename_style
from handler.learning import LEARN_MODEL, Learner, LearnJob, LearnStream
from handler.metrics import HandlerMetrics
from handler.parsing import (
    SHEET_SIZES,
    ActionRequest,
    CancelRequest,
    LearnRequest,
    Payload,
    SheetRequest,
    StylizeRequest,
    parse_request,
)
from handler.settings import HandlerSettings
from handler.style_cache import StyleCache
from handler.tensors import decode_tensor
from msgnet import imageio
from msgnet.animation.stylize import ClipResult
from msgnet.inference.control_values import BRUSHES, MAX_STYLES
from msgnet.inference.controls import Controls, mix_targets
from msgnet.inference.sheet import contact_sheet, sheet_names
from msgnet.inference.stylize import Stylizer, UnknownPresetError
from msgnet.learning.style_store import DEFAULT_OWNER
from msgnet.model.checkpoint import LoadedWeights, load_weights

log = logging.getLogger(__name__)

JSON_TYPE = "application/json"
PREVIEW_DIR = Path("presets") / "previews"
BATCH_HEADER = "X-Msgnet-Batch-Size"
CACHE_HEADER = "X-Msgnet-Style-Cache"  # preset | hit | miss (miss if any style missed)
SHEET_HEADER = "X-Msgnet-Sheet"        # the sheet's cell labels in order, comma-separated


class MsgnetHandler(BaseHandler):
    """Stylizes content images with a style image, a style tensor or a shipped preset."""

    def __init__(self) -> None:
        super().__init__()
        self.settings = HandlerSettings()
        self.cache: StyleCache[torch.Tensor] = StyleCache(0)
        self.stylizer: Stylizer | None = None
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
        """TorchServe's three phases over one server-side batch, each answering per request:
        :meth:`preprocess` (parse, decode, style targets), :meth:`inference` (the batched
        forward pass and the contact sheets) and :meth:`postprocess` (encode)."""
        self.context = context
        if self._is_describe():
            return [json.dumps(self._presets_listing())]
        hits, misses = self.cache.hits, self.cache.misses
        batch = self.preprocess(data)
        started = time.perf_counter()
        self.inference(batch)
        inference_ms = (time.perf_counter() - started) * 1000.0
        megapixels = self.postprocess(batch)
        for idx in range(len(data)):
            context.set_response_header(idx, BATCH_HEADER, str(len(data)))
        self.metrics.batch(size=len(data), inference_ms=inference_ms, megapixels=megapixels,
                           cache_hits=self.cache.hits - hits,
                           cache_misses=self.cache.misses - misses)
        return batch.out

    def preprocess(self, data: list[dict]) -> Batch:
        """Parse and decode each request on its own; actions and bad requests answer here."""
        batch = Batch(out=[b""] * len(data))
        for idx, fields in enumerate(data):
            try:
                request = parse_request(fields or {}, self.settings)
                if isinstance(request, ActionRequest):
                    batch.out[idx] = self._action(request, idx, self.context)
                elif isinstance(request, CancelRequest):
                    batch.out[idx] = self._cancel(request, idx, self.context)
                elif isinstance(request, LearnRequest):
                    job = self.learner.prepare(idx, request, self.stylizer, self.store,
                                               self._decode)
                    job.progress = len(data) == 1 and _learn_streams(fields or {})
                    batch.learns.append(job)
                elif isinstance(request, SheetRequest):
                    batch.sheets.append(self._prepare_sheet(idx, request))
                elif wants_clip(request):
                    job = self._prepare_clip(idx, request, self.context)
                    # an intermediate response speaks for the whole batch: alone only
                    job.progress = len(data) == 1 and wants_progress(fields or {})
                    batch.clips.append(job)
                else:
                    batch.jobs.append(self._prepare(idx, request, self.context))
            except Exception as exc:  # one bad request answers alone
                batch.out[idx] = self._fail(idx, exc, self.context)
        return batch

    def inference(self, batch: Batch) -> None:
        """The stylize jobs in isolated batched runs of at most ``batch_pixels`` output pixels,
        then each contact sheet, then each clip (frame by frame: a clip must not hold up the
        photos batched with it)."""
        batch.results.update(run_in_budget(self.stylizer, batch.jobs,
                                           self.settings.batch_pixels))
        for sheet in batch.sheets:
            try:
                batch.results[sheet.idx] = contact_sheet(
                    self.stylizer, sheet.photo, size=sheet.request.size,
                    controls=Controls(strength=sheet.request.strength,
                                      keep_colors=sheet.request.keep_colors))
            except Exception as exc:
                batch.results[sheet.idx] = exc
        for clip in batch.clips:
            stream = (ProgressStream(self.context, clip.idx, self.progress_send)
                      if clip.progress else None)
            token = clip.cancel_token
            if token is not None:
                self.cancels.sweep()
            try:
                result = run_clip(self.stylizer, clip, self.settings, progress=stream,
                                  should_stop=self.cancels.should_stop(token) if token else None)
            except Exception as exc:
                result = exc
            finally:
                if token is not None:  # cancelled, or a cancel that came too late
                    self.cancels.clear(token)
            if stream is not None and stream.sent:  # the status line has gone: answer in-band
                self.context.set_response_content_type(clip.idx, NDJSON_TYPE)
                batch.out[clip.idx] = stream.final(result)
                continue
            batch.results[clip.idx] = result
        for learn in batch.learns:
            self._learn(learn, batch)

    def _learn(self, job: LearnJob, batch: Batch) -> None:
        """One fit: streamed when asked, its result (or error) answered in-band once a line
        has gone (the HTTP status went with it)."""
        stream = LearnStream(self.context, job.idx, self.progress_send) if job.progress else None
        token = job.request.cancel_token
        if token is not None:
            self.cancels.sweep()
        try:
            if stream is not None:
                stream.start(job, job.request.steps or self.learner.cfg.steps)
            result: dict | BaseException = self.learner.run(
                job, self.stylizer, self.store, self.weights_file, progress=stream,
                should_stop=self.cancels.should_stop(token) if token else None)
        except Exception as exc:
            result = exc
        finally:
            if token is not None:
                self.cancels.clear(token)
        if stream is not None and stream.sent:
            self.context.set_response_content_type(job.idx, NDJSON_TYPE)
            if isinstance(result, BaseException):
                self._count_error(result)
            batch.out[job.idx] = stream.final(result)
            return
        batch.results[job.idx] = result

    def postprocess(self, batch: Batch) -> float:
        """Encode every result (or its error) into ``batch.out``; the megapixels answered."""
        formats = {job.idx: job.fmt for job in batch.jobs}
        formats.update({sheet.idx: sheet.request.fmt for sheet in batch.sheets})
        megapixels = 0.0
        for idx, result in batch.results.items():
            try:
                if isinstance(result, BaseException):
                    raise result
                if isinstance(result, dict):  # a learned style's figures
                    self.context.set_response_content_type(idx, JSON_TYPE)
                    batch.out[idx] = json.dumps(result)
                    continue
                if isinstance(result, ClipResult):
                    self.context.set_response_content_type(idx, result.content_type)
                    self.context.set_response_header(idx, CLIP_HEADER, clip_header(result))
                    megapixels += result.width * result.height * result.frames / 1e6
                    batch.out[idx] = result.body
                    continue
                image = result if isinstance(result, Image.Image) else imageio.bgr_to_image(result)
                body, content_type = imageio.encode_image(image, fmt=formats[idx],
                                                          quality=self.settings.jpeg_quality)
                megapixels += image.width * image.height / 1e6
                self.context.set_response_content_type(idx, content_type)
                if isinstance(result, Image.Image):
                    self.context.set_response_header(idx, SHEET_HEADER,
                                                     ",".join(sheet_names(self.stylizer)))
                batch.out[idx] = body
            except Exception as exc:
                batch.out[idx] = self._fail(idx, exc, self.context)
        return megapixels

    def _prepare(self, idx: int, request: StylizeRequest, context: Any) -> Job:
        content_image = self._decode(request.content, request.size)
        target, cache_state = self._style_target(request)
        try:
            content = self.stylizer.prepare_content(content_image, request.size)
        except imageio.ImageError:
            raise
        except ValueError as exc:
            raise errors.bad_option(str(exc)) from exc
        context.set_response_header(idx, CACHE_HEADER, cache_state)
        controls = Controls(strength=request.strength, keep_colors=request.keep_colors)
        return Job(idx, content, target, request.fmt, controls)

    def _prepare_clip(self, idx: int, request: StylizeRequest, context: Any) -> ClipJob:
        """A clip keeps its bytes: its frames are decoded one chunk at a time in inference."""
        target, cache_state = self._style_target(request)
        context.set_response_header(idx, CACHE_HEADER, cache_state)
        controls = Controls(strength=request.strength, keep_colors=request.keep_colors)
        return ClipJob(idx, request.content.data, target, clip_size(request, self.settings),
                       controls, cancel_token=request.cancel_token)

    def _prepare_sheet(self, idx: int, request: SheetRequest) -> SheetJob:
        """A contact sheet needs presets and the decoded photo; its cells run in inference."""
        names = self.stylizer.preset_names()
        if not names:
            raise errors.unknown_preset("(any)", names)
        return SheetJob(idx, self._decode(request.content, request.size), request)

    def _decode(self, payload: Payload, longest: int):
        """Decode an image or tensor payload; messages name the field it came from.

        ``longest`` lets a big JPEG decode at a reduced scale that is still >= that size.
        """
        try:
            if payload.kind == "tensor":
                return decode_tensor(payload.data, max_pixels=self.settings.max_pixels)
            return imageio.decode_image(payload.data, max_bytes=self.settings.max_bytes,
                                        max_pixels=self.settings.max_pixels,
                                        draft_longest=longest)
        except Exception as exc:
            err = errors.from_exception(exc)
            if err.code == errors.INTERNAL_ERROR:
                raise
            raise errors.RequestError(err.status, err.code, f"{payload.field}: {err.message}",
                                      payload.field) from exc

    def _style_target(self, request: StylizeRequest) -> tuple[torch.Tensor, str]:
        """The Gram target, the styles' weighted mix: each from the preset bank, the LRU cache
        or the encoder (at the brush's style size when a brush is given)."""
        style_size = (self.stylizer.brush_style_size(request.brush) if request.brush
                      else request.style_size)
        targets, states = [], []
        for spec in request.styles:
            if spec.preset is not None:
                try:
                    target, state = self.learned.target(self.stylizer, spec.preset,
                                                        request.owner)
                except (UnknownPresetError, KeyError) as exc:
                    raise errors.unknown_preset(spec.preset,
                                                self.stylizer.preset_names()) from exc
                targets.append(target)
                states.append(state)
            else:
                target, state = self._upload_target(spec.payload, style_size)
                targets.append(target)
                states.append(state)
        state = next((s for s in ("miss", "hit") if s in states), "preset")
        return mix_targets(targets, [spec.weight for spec in request.styles]), state

    def _upload_target(self, style: Payload, style_size: int) -> tuple[torch.Tensor, str]:
        key = StyleCache.key(f"{style.kind}:{style.digest}", style_size)
        cached = self.cache.get(key)
        if cached is not None:
            return cached, "hit"
        image = self._decode(style, style_size)
        with torch.inference_mode():
            target = self.stylizer.style_target(image, style_size)
        self.cache.put(key, target)
        return target, "miss"

    def _fail(self, idx: int, exc: BaseException, context: Any) -> str:
        err = self._count_error(exc, idx)
        context.set_response_status(err.status, err.phrase, idx)
        context.set_response_content_type(idx, JSON_TYPE)
        return err.to_json()

    def _count_error(self, exc: BaseException, idx: int = -1) -> errors.RequestError:
        err = errors.from_exception(exc)
        if err.code == errors.INTERNAL_ERROR and err is not exc:
            log.error("request %d failed", idx, exc_info=exc)
        self.metrics.request_error(err.code)
        return err

    # ---------------------------------------------------------------- actions
    def _cancel(self, request: CancelRequest, idx: int, context: Any) -> str:
        """Record a clip's cancel in the folder every worker of this host shares (the clip's
        own worker is busy with it): it stops before its next chunk of frames."""
        try:
            self.cancels.request(request.token)
        except OSError as exc:
            log.error("cancel not recorded in %s: %s", self.cancels.directory, exc)
            raise errors.internal_error("the cancel could not be recorded") from exc
        log.info("clip cancel recorded: %s", request.token)
        context.set_response_content_type(idx, JSON_TYPE)
        return json.dumps({"cancelled": request.token})

    def _action(self, request: ActionRequest, idx: int, context: Any) -> bytes | str:
        if request.action == "presets":
            context.set_response_content_type(idx, JSON_TYPE)
            return json.dumps(self._presets_listing(request.owner))
        if request.action in ("forget", "rename"):
            context.set_response_content_type(idx, JSON_TYPE)
            presets = self.stylizer.presets
            if request.action == "forget":
                return json.dumps(forget_style(self.store, presets, request.style_id,
                                               request.owner))
            return json.dumps(rename_style(self.store, presets, request.style_id,
                                           request.new_name, request.owner))
        names = self.stylizer.preset_names()
        if request.style_id not in names:
            learned, _ = self.learned.listing(self.stylizer, request.owner)
            if request.style_id not in learned:
                raise errors.unknown_preset(request.style_id, [*names, *learned])
            # a learned style's preview is the thumbnail of its picture (a known name)
            path = self.store.thumbnail_path(request.style_id, request.owner)
            if not path.is_file():
                raise errors.RequestError(
                    404, errors.NO_PREVIEW,
                    f"learned style {errors.shown(request.style_id)} has no preview image")
            context.set_response_content_type(idx, "image/jpeg")
            return path.read_bytes()
        path = self._preview_path(request.style_id)
        if path is None:
            raise errors.RequestError(
                404, errors.NO_PREVIEW,
                f"preset {errors.shown(request.style_id)} has no preview image")
        context.set_response_content_type(idx, "image/jpeg")
        return path.read_bytes()

    def _preview_path(self, name: str) -> Path | None:
        # ``name`` is a known preset name, never a client-chosen path
        path = self.model_dir / PREVIEW_DIR / f"{name}.jpg"
        return path if path.is_file() else None

    def _presets_listing(self, owner: str = DEFAULT_OWNER) -> dict:
        settings = self.settings
        usable, stale = self.learned.listing(self.stylizer, owner)
        return {
            "presets": [{"name": n, "preview": self._preview_path(n) is not None}
                        for n in self.stylizer.preset_names()],
            "default_size": settings.default_size,
            "min_size": settings.min_size,
            "max_size": settings.max_size,
            "sizes": settings.sizes,
            "variant": self.stylizer.variant_name,
            "default_style_size": settings.default_style_size,
            "controls": {"strength": [0.0, 1.0], "keep_colors": True,
                         "brushes": {b: self.stylizer.brush_style_size(b) for b in BRUSHES},
                         "max_styles": MAX_STYLES, "sheet_sizes": list(SHEET_SIZES)},
            "formats": ["jpeg", "png"],
            "clips": {**settings.clip_limits().describe(), "reference": settings.clip_reference,
                      "inputs": ["gif", "webp", "apng", "mp4", "webm", "mov"],
                      "outputs": {"animation": "image/gif", "video": "video/mp4"},
                      "summary": settings.clip_limits().summary(), "cancel": True},
            "max_bytes": settings.max_bytes,
            # the owner's learned styles: usable by name as style_id; other_weights were
            # learned with other weights and are refused (409 weights_mismatch)
            "learned": {"owner": owner, "styles": usable, "other_weights": stale,
                        "max_per_owner": settings.store_max_per_owner,
                        "learn_model": LEARN_MODEL, "max_steps": settings.learn_max_steps},
            "model_version": self.version,
            "weights": self._weights_summary(),
        }

    def _weights_summary(self) -> dict:
        summary: dict[str, Any] = {"file": self.weights_file, "layout": self.weights.layout,
                                   "ngf": int(self.weights.net.ngf)}
        for key, value in list(self.weights.metadata.items())[:20]:
            if isinstance(value, (bool, int, float)):
                summary.setdefault(str(key), value)
            elif isinstance(value, str):
                summary.setdefault(str(key), value[:200])
        return summary


def _learn_streams(fields: dict) -> bool:
    """A learn request streams its progress unless it sends ``progress=false``."""
    body = fields.get("body")
    given = "progress" in fields or (isinstance(body, dict) and "progress" in body)
    return wants_progress(fields) if given else True
