"""From a checked request to the model's inputs: the decoded content, and the style target
from the preset bank, a learned style or the encoder (through the LRU cache).

This is the decoding half of ``preprocess``: what fails here (an unreadable image, an
unknown preset, a size the model refuses) is that request's own 4xx, answered before any
forward pass. A photo becomes a :class:`handler.batching.Job`, a contact sheet a
:class:`handler.batching.SheetJob` and a clip a :class:`handler.clips.ClipJob` (a clip keeps
its bytes: its frames are decoded a chunk at a time while it is stylized).
"""

from __future__ import annotations

import torch
from PIL import Image

from handler import errors
from handler.answers import CACHE_HEADER
from handler.batching import Job, SheetJob
from handler.clips import ClipJob, clip_size, wants_clip
from handler.fields import Payload
from handler.learned import LearnedStyles
from handler.parsing import SheetRequest, StylizeRequest
from handler.settings import HandlerSettings
from handler.style_cache import StyleCache
from handler.tensors import decode_tensor
from msgnet import imageio
from msgnet.inference.controls import Controls, mix_targets
from msgnet.inference.stylize import Stylizer, UnknownPresetError


class Inputs:
    """Decodes payloads and resolves style targets for one loaded :class:`Stylizer`."""

    def __init__(self, stylizer: Stylizer, settings: HandlerSettings,
                 cache: StyleCache[torch.Tensor], learned: LearnedStyles):
        self.stylizer = stylizer
        self.settings = settings
        self.cache = cache
        self.learned = learned

    def stylize(self, idx: int, request: StylizeRequest, progress: bool) -> Job | ClipJob:
        """A photo's job, or a clip's when the content is an animation or a video (tensors
        are always stills); ``progress``: the clip streams its progress."""
        if wants_clip(request):
            return self.clip(idx, request, progress)
        return self.photo(idx, request)

    def photo(self, idx: int, request: StylizeRequest) -> Job:
        content_image = self.decode(request.content, request.size)
        target, cache_state = self.style_target(request)
        try:
            content = self.stylizer.prepare_content(content_image, request.size)
        except imageio.ImageError:
            raise
        except ValueError as exc:
            raise errors.bad_option(str(exc)) from exc
        controls = Controls(strength=request.strength, keep_colors=request.keep_colors)
        return Job(idx, content, target, request.fmt, controls, {CACHE_HEADER: cache_state})

    def clip(self, idx: int, request: StylizeRequest, progress: bool) -> ClipJob:
        target, cache_state = self.style_target(request)
        controls = Controls(strength=request.strength, keep_colors=request.keep_colors)
        return ClipJob(idx, request.content.data, target, clip_size(request, self.settings),
                       controls, progress=progress, cancel_token=request.cancel_token,
                       headers={CACHE_HEADER: cache_state})

    def sheet(self, idx: int, request: SheetRequest) -> SheetJob:
        """A contact sheet needs presets and the decoded photo."""
        names = self.stylizer.preset_names()
        if not names:
            raise errors.unknown_preset("(any)", names)
        return SheetJob(idx, self.decode(request.content, request.size), request)

    def decode(self, payload: Payload, longest: int) -> Image.Image:
        """Decode an image or tensor payload; messages name the field it came from.

        ``longest`` lets a big JPEG decode at a reduced scale that is still >= that size.
        """
        settings = self.settings
        try:
            if payload.kind == "tensor":
                return decode_tensor(payload.data, max_pixels=settings.max_pixels)
            return imageio.decode_image(payload.data, max_bytes=settings.max_bytes,
                                        max_pixels=settings.max_pixels,
                                        draft_longest=longest)
        except Exception as exc:
            err = errors.from_exception(exc)
            if err.code == errors.INTERNAL_ERROR:
                raise
            raise errors.RequestError(err.status, err.code, f"{payload.field}: {err.message}",
                                      payload.field) from exc

    def style_target(self, request: StylizeRequest) -> tuple[torch.Tensor, str]:
        """The Gram target, the styles' weighted mix: each from the preset bank, the LRU cache
        or the encoder (at the brush's style size when a brush is given), and the cache's
        state for the answer's header (``miss`` if any style missed)."""
        stylizer = self.stylizer
        style_size = (stylizer.brush_style_size(request.brush) if request.brush
                      else request.style_size)
        targets, states = [], []
        for spec in request.styles:
            if spec.preset is not None:
                try:
                    target, state = self.learned.target(stylizer, spec.preset, request.owner)
                except (UnknownPresetError, KeyError) as exc:
                    raise errors.unknown_preset(spec.preset, stylizer.preset_names()) from exc
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
        image = self.decode(style, style_size)
        with torch.inference_mode():
            target = self.stylizer.style_target(image, style_size)
        self.cache.put(key, target)
        return target, "miss"
