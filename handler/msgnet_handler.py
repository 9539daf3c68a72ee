"""TorchServe handler for MSG-Net style transfer (the REST contract is in docs/serving.md).

One call of :meth:`MsgnetHandler.handle` receives a server-side batch. Each request is parsed
and decoded on its own, so a bad one only gets its own 4xx JSON answer; the good ones are
stylized together by :meth:`msgnet.stylize.Stylizer.run` (which groups equal shapes into one
forward pass, so mixed sizes and styles are fine), and if that batched run fails the jobs are
retried one by one so that a single failure cannot take its neighbours down.

The model code lives in the ``msgnet`` package, shipped inside the .mar next to this file.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import torch
from ts.torch_handler.base_handler import BaseHandler

from handler import errors
from handler.batching import Job, run_isolated
from handler.metrics import HandlerMetrics
from handler.parsing import (
    SHEET_SIZES,
    ActionRequest,
    Payload,
    SheetRequest,
    StylizeRequest,
    parse_request,
)
from handler.settings import HandlerSettings
from handler.style_cache import StyleCache
from handler.tensors import decode_tensor
from msgnet import imageio
from msgnet.checkpoint import LoadedWeights, load_weights
from msgnet.control_values import BRUSHES, MAX_STYLES
from msgnet.controls import Controls, mix_targets
from msgnet.sheet import contact_sheet, sheet_names
from msgnet.stylize import Stylizer, UnknownPresetError

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
                                 default_style_size=self.settings.default_style_size,
                                 variant=self.settings.variant,
                                 tiling=self.settings.tile_config())
        # the first request would otherwise pay for kernel set-up and heap growth (~0.3 s)
        self.warmup_s = self.stylizer.warm_up() if self.settings.warmup else None
        self.cache = StyleCache(self.settings.cache_size)
        self.version = str(model_info.get("modelVersion", ""))
        self.metrics = HandlerMetrics(context.metrics, context.model_name)
        self.initialized = True
        log.info("msgnet handler ready: version=%s weights=%s layout=%s presets=%d device=%s "
                 "threads=%d variant=%s max_size=%d tile_pixels=%d warm-up=%s msgnet=%s",
                 self.version, serialized, self.weights.layout,
                 len(self.stylizer.preset_names()), device, threads, self.stylizer.variant_name,
                 self.settings.max_size, self.settings.tile_pixels,
                 "off" if self.warmup_s is None else f"{self.warmup_s:.2f} s", imageio.__file__)

    # ---------------------------------------------------------------- serving
    def handle(self, data: list[dict], context: Any) -> list[bytes | str]:
        self.context = context
        if self._is_describe():
            return [json.dumps(self._presets_listing())]
        size = len(data)
        out: list[bytes | str] = [b""] * size
        hits, misses = self.cache.hits, self.cache.misses
        jobs: list[Job] = []
        sheets: list[tuple[int, SheetRequest]] = []
        for idx, fields in enumerate(data):
            try:
                request = parse_request(fields or {}, self.settings)
                if isinstance(request, ActionRequest):
                    out[idx] = self._action(request, idx, context)
                elif isinstance(request, SheetRequest):
                    sheets.append((idx, request))
                else:
                    jobs.append(self._prepare(idx, request, context))
            except Exception as exc:  # one bad request answers alone
                out[idx] = self._fail(idx, exc, context)

        started = time.perf_counter()
        results = run_isolated(self.stylizer, jobs)
        inference_ms = (time.perf_counter() - started) * 1000.0
        megapixels = 0.0
        for job in jobs:
            result = results[job.idx]
            try:
                if isinstance(result, BaseException):
                    raise result
                image = imageio.bgr_to_image(result)
                body, content_type = imageio.encode_image(image, fmt=job.fmt,
                                                          quality=self.settings.jpeg_quality)
                megapixels += image.width * image.height / 1e6
                context.set_response_content_type(job.idx, content_type)
                out[job.idx] = body
            except Exception as exc:
                out[job.idx] = self._fail(job.idx, exc, context)
        started = time.perf_counter()
        for idx, request in sheets:
            try:
                out[idx], pixels = self._sheet(idx, request, context)
                megapixels += pixels / 1e6
            except Exception as exc:
                out[idx] = self._fail(idx, exc, context)
        inference_ms += (time.perf_counter() - started) * 1000.0
        for idx in range(size):
            context.set_response_header(idx, BATCH_HEADER, str(size))
        self.metrics.batch(size=size, inference_ms=inference_ms, megapixels=megapixels,
                           cache_hits=self.cache.hits - hits,
                           cache_misses=self.cache.misses - misses)
        return out

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

    def _sheet(self, idx: int, request: SheetRequest, context: Any) -> tuple[bytes, int]:
        """The contact sheet: every preset's cell in one batched :meth:`Stylizer.run`."""
        names = self.stylizer.preset_names()
        if not names:
            raise errors.unknown_preset("(any)", names)
        photo = self._decode(request.content, request.size)
        controls = Controls(strength=request.strength, keep_colors=request.keep_colors)
        sheet = contact_sheet(self.stylizer, photo, size=request.size, controls=controls)
        body, content_type = imageio.encode_image(sheet, fmt=request.fmt,
                                                  quality=self.settings.jpeg_quality)
        context.set_response_content_type(idx, content_type)
        context.set_response_header(idx, SHEET_HEADER, ",".join(sheet_names(self.stylizer)))
        return body, sheet.width * sheet.height

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
            raise errors.RequestError(err.status, err.code,
                                      f"{payload.field}: {err.message}") from exc

    def _style_target(self, request: StylizeRequest) -> tuple[torch.Tensor, str]:
        """The Gram target, the styles' weighted mix: each from the preset bank, the LRU cache
        or the encoder (at the brush's style size when a brush is given)."""
        style_size = (self.stylizer.brush_style_size(request.brush) if request.brush
                      else request.style_size)
        targets, states = [], []
        for spec in request.styles:
            if spec.preset is not None:
                try:
                    targets.append(self.stylizer.preset_target(spec.preset))
                except (UnknownPresetError, KeyError) as exc:
                    raise errors.unknown_preset(spec.preset,
                                                self.stylizer.preset_names()) from exc
                states.append("preset")
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
        err = errors.from_exception(exc)
        if err.code == errors.INTERNAL_ERROR and err is not exc:
            log.error("request %d failed", idx, exc_info=exc)
        context.set_response_status(err.status, err.phrase, idx)
        context.set_response_content_type(idx, JSON_TYPE)
        self.metrics.request_error(err.code)
        return err.to_json()

    # ---------------------------------------------------------------- actions
    def _action(self, request: ActionRequest, idx: int, context: Any) -> bytes | str:
        if request.action == "presets":
            context.set_response_content_type(idx, JSON_TYPE)
            return json.dumps(self._presets_listing())
        names = self.stylizer.preset_names()
        if request.style_id not in names:
            raise errors.unknown_preset(request.style_id, names)
        path = self._preview_path(request.style_id)
        if path is None:
            raise errors.RequestError(404, errors.NO_PREVIEW,
                                      f"preset {request.style_id!r} has no preview image")
        context.set_response_content_type(idx, "image/jpeg")
        return path.read_bytes()

    def _preview_path(self, name: str) -> Path | None:
        # ``name`` is a known preset name, never a client-chosen path
        path = self.model_dir / PREVIEW_DIR / f"{name}.jpg"
        return path if path.is_file() else None

    def _presets_listing(self) -> dict:
        settings = self.settings
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
            "max_bytes": settings.max_bytes,
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
