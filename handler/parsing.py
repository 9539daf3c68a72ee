"""The REST contract of the msgnet models: one TorchServe request dict in, one checked request
object out (docs/serving.md has the contract; no decoding happens here).

:func:`parse_request` first says what kind of request it is, then checks every field of that
kind, so a bad value is a 4xx before the worker does any work:

* ``cancel=<token>`` and ``action=presets|preview|forget|rename``: answered without the model
  (:mod:`handler.actions`);
* ``action=learn``: a style learned on the ``msgnet_learn`` model (:mod:`handler.learning`);
* ``action=sheet``: the content in every preset (:class:`SheetRequest`);
* anything else stylizes (:class:`StylizeRequest`). Style controls: ``strength``,
  ``keep_colors``, ``brush``, several styles to mix (``style_id=candy:0.7,udnie:0.3`` and
  uploads ``style``, ``style_2`` ... with ``style_weight``, ``style_2_weight`` ...). A clip may
  carry ``cancel_token``; ``owner`` (default ``local``) picks whose learned styles a
  ``style_id`` may name.

A bad value is a 400 whose ``field`` is the field's name (and its message starts with it, for
people); how each field is read is :mod:`handler.fields`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from handler.actions import ACTIONS as ANSWERED
from handler.actions import ActionRequest, CancelRequest, parse_action, parse_cancel
from handler.errors import bad_option, missing_field, shown
from handler.fields import Fields, Payload, text
from handler.learning import LearnRequest, parse_learn
from handler.settings import HandlerSettings
from msgnet.inference.control_values import (
    BRUSHES,
    FALLBACK_STYLE_SIZE,
    MAX_STYLES,
    ControlError,
    check_strength,
    normalise_weights,
    parse_bool,
    parse_weighted,
)
from msgnet.inference.sheet import DEFAULT_CELL, MAX_CELL, MIN_CELL
from msgnet.learning import style_store

ACTIONS = ("stylize", "presets", "preview", "sheet", "learn", "forget", "rename")
FORMATS = {"jpeg": "jpeg", "jpg": "jpeg", "png": "png"}
_UPLOAD_FIELD = re.compile(r"^style(?:_(\d+))?(?:_tensor)?$")


@dataclass(frozen=True)
class StyleSpec:
    """One style of a request: a preset name or an uploaded payload, with its mixing weight."""

    weight: float
    preset: str | None = None
    payload: Payload | None = None


@dataclass(frozen=True)
class StylizeRequest:
    content: Payload
    styles: tuple[StyleSpec, ...]  # presets first, then uploads; weights sum to one
    size: int
    style_size: int                # for uploads: the brush's size when a brush is given
    fmt: str                       # "jpeg" | "png"
    strength: float = 1.0
    keep_colors: bool = False
    brush: str | None = None
    size_given: bool = False       # a clip's default size differs from a photo's
    cancel_token: str | None = None  # a clip stops when a cancel request names it
    owner: str = style_store.DEFAULT_OWNER  # whose learned styles ``style_id`` may name

    @property
    def style(self) -> Payload | None:
        """The first uploaded style, if any (a request with one style has one of the two)."""
        return next((s.payload for s in self.styles if s.payload is not None), None)

    @property
    def style_id(self) -> str | None:
        """The first preset name, if any."""
        return next((s.preset for s in self.styles if s.preset is not None), None)


@dataclass(frozen=True)
class SheetRequest:
    """``action=sheet``: the content in every preset, ``size`` px cells."""

    content: Payload
    size: int
    fmt: str
    strength: float = 1.0
    keep_colors: bool = False


Request = StylizeRequest | SheetRequest | ActionRequest | CancelRequest | LearnRequest


def parse_request(raw: Mapping[str, Any], settings: HandlerSettings) -> Request:
    """Validate one request; raises :class:`handler.errors.RequestError` with its status."""
    fields = Fields(raw, settings)
    if fields.present("cancel"):
        return parse_cancel(fields)
    action = fields.text("action").lower() or "stylize"
    if action not in ACTIONS:
        raise bad_option(f"unknown action {shown(action)}; use one of {', '.join(ACTIONS)}",
                         "action")
    # checked for every kind, in this order, so that the first fault reported stays the same
    style_id = fields.style_id()
    owner = fields.owner()
    if action in ANSWERED:
        return parse_action(action, style_id, owner, fields)
    if action == "learn":
        return parse_learn(fields, owner)
    if action == "sheet":
        return _sheet_request(fields)
    return _stylize_request(fields, style_id, owner)


def _content(fields: Fields) -> Payload:
    content = fields.payload("content")
    if content is None:
        raise missing_field("field 'content' (an image) is required"
                            " - or 'content_tensor' (.npy / safetensors)", "content")
    return content


def _sheet_request(fields: Fields) -> SheetRequest:
    content = _content(fields)
    strength = fields.control(check_strength, "strength", 1.0)
    keep_colors = fields.control(parse_bool, "keep_colors", False)
    fmt = _format(fields)
    for name in ("style_id", "brush", "style", "style_tensor"):
        if fields.present(name):
            raise bad_option(f"{name}: action 'sheet' uses every preset, so it takes no "
                             "style or brush", name)
    lo, hi = MIN_CELL, min(MAX_CELL, fields.settings.max_size)
    size = fields.int_option("size", min(DEFAULT_CELL, hi), lo, hi)
    return SheetRequest(content, size, fmt, strength, keep_colors)


def _stylize_request(fields: Fields, style_id: str | None, owner: str) -> StylizeRequest:
    settings = fields.settings
    content = _content(fields)
    strength = fields.control(check_strength, "strength", 1.0)
    keep_colors = fields.control(parse_bool, "keep_colors", False)
    fmt = _format(fields)
    styles = _styles(fields, style_id)
    brush = _brush(fields)
    # 0 (from the weights) is resolved by the handler once the weights are loaded
    style_size = fields.int_option("style_size",
                                   settings.default_style_size or FALLBACK_STYLE_SIZE,
                                   settings.min_size, settings.max_size)
    if brush is not None:
        if fields.present("style_size"):
            raise bad_option("brush: it sets the style size, so send brush or style_size, "
                             "not both", "brush")
        if all(s.payload is None for s in styles):
            raise bad_option("brush: it sets the size a style image is encoded at, so it "
                             "needs an uploaded style (a preset is stored as one target)", "brush")
    return StylizeRequest(
        content=content,
        styles=styles,
        size=fields.int_option("size", settings.default_size, settings.min_size,
                               settings.max_size),
        style_size=style_size,
        fmt=fmt,
        strength=strength,
        keep_colors=keep_colors,
        brush=brush,
        size_given=fields.present("size"),
        cancel_token=fields.token("cancel_token"),
        owner=owner,
    )


def _brush(fields: Fields) -> str | None:
    raw = fields.text("brush").strip().lower()
    if not raw:
        return None
    if raw not in BRUSHES:
        raise bad_option(f"brush must be one of {', '.join(BRUSHES)}, got {raw[:20]!r}", "brush")
    return raw


def _styles(fields: Fields, style_id: str | None) -> tuple[StyleSpec, ...]:
    """Presets from ``style_id`` (``NAME[:WEIGHT]`` by commas), then the uploaded styles."""
    presets: list[tuple[str, float]] = []
    for part in (style_id or "").split(","):
        if not part.strip():
            continue
        try:
            name, weight = parse_weighted(part, "style_id")
        except ControlError as exc:
            raise bad_option(str(exc), "style_id") from exc
        if len(name) > 100:
            raise bad_option("style_id: a preset name is longer than 100 characters", "style_id")
        presets.append((name, weight))
    uploads: list[tuple[Payload, float]] = []
    for number in _upload_numbers(fields.values):
        name = "style" if number == 1 else f"style_{number}"
        payload = fields.payload(name)
        if payload is None:
            continue
        weight_field = f"{name}_weight"
        raw = fields.get(weight_field)
        weight = _weight(raw, weight_field) if fields.present(weight_field) else 1.0
        uploads.append((payload, weight))
    if not presets and not uploads:
        raise missing_field("a style is required: field 'style' (an image), 'style_tensor' "
                            "or 'style_id' (a preset name)", "style")
    if len(presets) + len(uploads) > MAX_STYLES:
        raise bad_option(f"style_id/style: at most {MAX_STYLES} styles can be mixed, got "
                         f"{len(presets) + len(uploads)}", "style_id")
    try:
        weights = normalise_weights([w for _, w in presets] + [w for _, w in uploads])
    except ControlError as exc:
        raise bad_option(f"style weights (style_id, style_weight): {exc}", "style_id") from exc
    specs = [StyleSpec(w, preset=name) for (name, _), w in zip(presets, weights, strict=False)]
    specs += [StyleSpec(w, payload=payload)
              for (payload, _), w in zip(uploads, weights[len(presets):], strict=True)]
    return tuple(specs)


def _upload_numbers(values: Mapping[str, Any]) -> list[int]:
    """1 for ``style``, n for ``style_n`` (and their ``_tensor`` fields), sorted."""
    numbers = set()
    for key in values:
        match = _UPLOAD_FIELD.match(key)
        if match:
            number = int(match.group(1) or 1)
            if not 1 <= number <= MAX_STYLES:
                raise bad_option(f"{key}: uploaded styles are style, style_2 ... "
                                 f"style_{MAX_STYLES}", key)
            numbers.add(number)
    return sorted(numbers)


def _weight(raw: Any, field: str) -> float:
    value = raw if isinstance(raw, (int, float)) and not isinstance(raw, bool) else \
        text(raw, field).strip()
    try:
        weight = float(value)
    except (TypeError, ValueError):
        raise bad_option(f"{field} must be a number >= 0, got {str(value)[:40]!r}",
                         field) from None
    if not (weight >= 0 and weight != float("inf")):
        raise bad_option(f"{field} must be a number >= 0, got {str(value)[:40]}", field)
    return weight


def _format(fields: Fields) -> str:
    raw = fields.text("format").strip().lower()
    if not raw:
        return "jpeg"
    if raw not in FORMATS:
        raise bad_option(f"format must be jpeg or png, got {raw[:20]!r}", "format")
    return FORMATS[raw]
