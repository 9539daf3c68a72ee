"""Turn one TorchServe request dict into a validated request object (no torch, no decoding).

What TorchServe 0.12 puts in the dict (checked against its frontend and worker code):

* multipart/form-data and x-www-form-urlencoded: one key per field (a repeated name keeps the
  last value). File parts arrive as ``bytearray``, except that a part sent as ``text/*`` is
  decoded to ``str`` and one sent as ``application/json`` to a parsed object;
* any other body: the single key ``"body"`` - parsed already when the request's Content-Type is
  ``application/json``, raw ``bytearray`` otherwise;
* query-string parameters only for ``POST /invocations?model_name=...`` and the legacy
  ``POST /<model>/predict``; ``/predictions/...`` drops the query string in the frontend.

Images in form fields are raw file bytes; in a JSON body they are base64 strings (a
``data:...;base64,`` prefix is accepted).

Style controls (docs/serving.md): ``strength``, ``keep_colors``, ``brush``, several styles to
mix (``style_id=candy:0.7,udnie:0.3`` and uploads ``style``, ``style_2`` ... with
``style_weight``, ``style_2_weight`` ...), and ``action=sheet``. A clip may carry
``cancel_token``; a request with only ``cancel=<token>`` cancels that clip
(:mod:`handler.cancel`). ``owner`` (default ``local``) picks whose learned styles a
``style_id`` may name; ``action=learn`` (the ``msgnet_learn`` model, :mod:`handler.learning`)
takes a ``style`` image, a ``name``, optional ``steps`` and ``overwrite``; ``action=forget``
(``style_id``) and ``action=rename`` (``style_id``, ``new_name``) delete or rename one of the
owner's learned styles (:mod:`handler.learned`). A bad value is a
400 whose ``field`` is the field's name (and its message starts with it, for people).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from handler.cancel import check_token
from handler.errors import bad_option, missing_field, short, shown, too_large
from handler.settings import MIB, HandlerSettings
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
from msgnet.learning import style_store

IMAGE_FIELDS = ("content", "style")
TENSOR_FIELDS = ("content_tensor", "style_tensor")
ACTIONS = ("stylize", "presets", "preview", "sheet", "learn", "forget", "rename")
FORMATS = {"jpeg": "jpeg", "jpg": "jpeg", "png": "png"}
SHEET_SIZES = (64, 512)     # msgnet.inference.sheet.MIN_CELL, MAX_CELL
DEFAULT_SHEET_SIZE = 256    # msgnet.inference.sheet.DEFAULT_CELL
_DATA_URL = re.compile(r"^data:[^,]{0,200};base64,", re.IGNORECASE)
_WHITESPACE = re.compile(rb"\s+")
_UPLOAD_FIELD = re.compile(r"^style(?:_(\d+))?(?:_tensor)?$")


@dataclass(frozen=True)
class Payload:
    """Bytes of one input image: an encoded image file or an image tensor file."""

    data: bytes
    kind: str   # "image" | "tensor"
    field: str  # the request field it came from, for messages

    @cached_property
    def digest(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


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


@dataclass(frozen=True)
class CancelRequest:
    """``cancel=<token>``: stop the clip whose request carried ``cancel_token=<token>``."""

    token: str


@dataclass(frozen=True)
class ActionRequest:
    action: str            # "presets" | "preview" | "forget" | "rename"
    style_id: str | None
    owner: str = style_store.DEFAULT_OWNER
    new_name: str = ""     # ``rename`` only: the learned style's new name


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


def parse_request(fields: Mapping[str, Any], settings: HandlerSettings
                  ) -> StylizeRequest | SheetRequest | ActionRequest | CancelRequest | LearnRequest:
    """Validate one request; raises :class:`handler.errors.RequestError` with its status."""
    form, encoded = _split_sources(fields)
    values = {**form, **encoded}

    if _present(values.get("cancel")):
        if any(_present(values.get(f)) for f in ("content", "content_tensor")):
            raise bad_option("cancel: a cancel request carries only the cancel token of the "
                             "clip to stop, no content", "cancel")
        return CancelRequest(check_token(values["cancel"], "cancel"))

    action = _text(values.get("action"), "action").lower() or "stylize"
    if action not in ACTIONS:
        raise bad_option(f"unknown action {shown(action)}; use one of {', '.join(ACTIONS)}",
                         "action")
    style_id = _style_id_text(values.get("style_id"))
    owner = _owner(values)
    if action == "presets":
        return ActionRequest("presets", style_id, owner)
    if action == "preview":
        if style_id is None:
            raise missing_field("action 'preview' needs a style_id", "style_id")
        return ActionRequest("preview", style_id, owner)
    if action == "learn":
        return _learn_request(form, encoded, values, owner, settings)
    if action in ("forget", "rename"):
        return _store_request(action, style_id, values, owner)

    content = _payload(form, encoded, "content", settings)
    if content is None:
        raise missing_field("field 'content' (an image) is required"
                            " - or 'content_tensor' (.npy / safetensors)", "content")
    strength = _control(check_strength, values.get("strength"), "strength", 1.0)
    keep_colors = _control(parse_bool, values.get("keep_colors"), "keep_colors", False)
    fmt = _format(values.get("format"))
    if action == "sheet":
        for field in ("style_id", "brush", "style", "style_tensor"):
            if _present(values.get(field)):
                raise bad_option(f"{field}: action 'sheet' uses every preset, so it takes no "
                                 "style or brush", field)
        lo, hi = SHEET_SIZES[0], min(SHEET_SIZES[1], settings.max_size)
        size = _int_option(values, "size", min(DEFAULT_SHEET_SIZE, hi), lo, hi)
        return SheetRequest(content, size, fmt, strength, keep_colors)

    styles = _styles(form, encoded, style_id, settings)
    brush = _brush(values)
    # 0 (from the weights) is resolved by the handler once the weights are loaded
    style_size = _int_option(values, "style_size",
                             settings.default_style_size or FALLBACK_STYLE_SIZE,
                             settings.min_size, settings.max_size)
    if brush is not None:
        if _present(values.get("style_size")):
            raise bad_option("brush: it sets the style size, so send brush or style_size, "
                             "not both", "brush")
        if all(s.payload is None for s in styles):
            raise bad_option("brush: it sets the size a style image is encoded at, so it "
                             "needs an uploaded style (a preset is stored as one target)", "brush")
    return StylizeRequest(
        content=content,
        styles=styles,
        size=_int_option(values, "size", settings.default_size, settings.min_size,
                         settings.max_size),
        style_size=style_size,
        fmt=fmt,
        strength=strength,
        keep_colors=keep_colors,
        brush=brush,
        size_given=_present(values.get("size")),
        cancel_token=(check_token(values["cancel_token"], "cancel_token")
                      if _present(values.get("cancel_token")) else None),
        owner=owner,
    )


def _owner(values: Mapping[str, Any]) -> str:
    """``owner`` (default ``local``): one folder of the style store, so never a path."""
    raw = _text(values.get("owner"), "owner").strip()
    if not raw:
        return style_store.DEFAULT_OWNER
    try:
        return style_store.check_owner(raw)
    except style_store.StyleStoreError:
        raise bad_option(f"owner must be 1-64 of A-Z a-z 0-9 . _ - starting with a letter or "
                         f"digit, got {shown(raw)}", "owner") from None


def _store_name(raw: str, field: str) -> str:
    """A learned style's name as the store checks it (never a path), or a 400 on ``field``."""
    try:
        return style_store.check_name(raw)
    except style_store.StyleStoreError as exc:
        raise bad_option(f"{field}: {exc}", field) from None


def _learn_request(form: dict[str, Any], encoded: dict[str, Any], values: Mapping[str, Any],
                   owner: str, settings: HandlerSettings) -> LearnRequest:
    """``action=learn``: every field checked here, before the worker spends a minute."""
    raw_name = _text(values.get("name"), "name").strip()
    if not raw_name:
        raise missing_field("action 'learn' needs a name to store the style under", "name")
    name = _store_name(raw_name, "name")
    style = _payload(form, encoded, "style", settings)
    if style is None or style.kind != "image":
        raise missing_field("action 'learn' needs the style picture as 'style' (an image)",
                            "style")
    steps = None
    if _present(values.get("steps")):
        steps = _int_option(values, "steps", 0, 1, settings.learn_max_steps, unit="steps")
    overwrite = _control(parse_bool, values.get("overwrite"), "overwrite", False)
    token = (check_token(values["cancel_token"], "cancel_token")
             if _present(values.get("cancel_token")) else None)
    return LearnRequest(style, name, owner, steps, overwrite, token)


def _store_request(action: str, style_id: str | None, values: Mapping[str, Any],
                   owner: str) -> ActionRequest:
    """``action=forget`` / ``rename``: a learned style of ``owner`` by ``style_id``, and for a
    rename its ``new_name``, both checked as store names (never paths)."""
    if style_id is None:
        raise missing_field(f"action {shown(action)} needs the learned style as style_id",
                            "style_id")
    name = _store_name(style_id, "style_id")
    if action == "forget":
        return ActionRequest(action, name, owner)
    raw = _text(values.get("new_name"), "new_name").strip()
    if not raw:
        raise missing_field("action 'rename' needs the new name as new_name", "new_name")
    new_name = _store_name(raw, "new_name")
    return ActionRequest(action, name, owner, new_name)


def _control(check, raw: Any, field: str, default):
    """A control's value through its :mod:`msgnet.inference.control_values` check, or a 400."""
    if not _present(raw):
        return default
    value = raw if isinstance(raw, (bool, int, float)) else _text(raw, field).strip()
    try:
        return check(value, field)
    except ControlError as exc:
        raise bad_option(str(exc), field) from exc


def _brush(values: Mapping[str, Any]) -> str | None:
    raw = _text(values.get("brush"), "brush").strip().lower()
    if not raw:
        return None
    if raw not in BRUSHES:
        raise bad_option(f"brush must be one of {', '.join(BRUSHES)}, got {raw[:20]!r}", "brush")
    return raw


def _style_id_text(value: Any) -> str | None:
    """``style_id`` as text; a JSON list of names is joined with commas."""
    if isinstance(value, list):
        value = ",".join(_text(v, "style_id") for v in value)
    text = _text(value, "style_id").strip()
    if len(text) > 100 * MAX_STYLES:
        raise bad_option(f"style_id is longer than {100 * MAX_STYLES} characters", "style_id")
    return text or None


def _styles(form: dict[str, Any], encoded: dict[str, Any], style_id: str | None,
            settings: HandlerSettings) -> tuple[StyleSpec, ...]:
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
    for number in _upload_numbers({**form, **encoded}):
        name = "style" if number == 1 else f"style_{number}"
        payload = _payload(form, encoded, name, settings)
        if payload is None:
            continue
        weight_field = f"{name}_weight"
        raw = {**form, **encoded}.get(weight_field)
        weight = _weight(raw, weight_field) if _present(raw) else 1.0
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
    text = raw if isinstance(raw, (int, float)) and not isinstance(raw, bool) else \
        _text(raw, field).strip()
    try:
        weight = float(text)
    except (TypeError, ValueError):
        raise bad_option(f"{field} must be a number >= 0, got {str(text)[:40]!r}", field) from None
    if not (weight >= 0 and weight != float("inf")):
        raise bad_option(f"{field} must be a number >= 0, got {str(text)[:40]}", field)
    return weight


def _split_sources(fields: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(raw form/query values, values of a JSON body whose images are base64)."""
    form = {k: v for k, v in fields.items() if k != "body"}
    body = fields.get("body")
    if body is None:
        return form, {}
    if isinstance(body, (bytes, bytearray, str)):
        raw = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        if not raw.strip():
            return form, {}
        if raw.lstrip()[:1] not in (b"{", b"["):
            # a bare image upload, e.g. curl --data-binary @photo.jpg
            #   "/invocations?model_name=msgnet&style_id=candy"
            return {**form, "content": raw}, {}
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise bad_option(f"request body is not valid JSON: {short(str(exc), 120)}") from exc
        except RecursionError as exc:  # [[[[...]]]] deeper than Python's stack
            raise bad_option("request body is not valid JSON: nested too deeply") from exc
    if not isinstance(body, dict):
        raise bad_option("a JSON body must be an object such as "
                         '{"content": "<base64>", "style_id": "candy"}')
    return form, body


def _payload(form: dict[str, Any], encoded: dict[str, Any], name: str,
             settings: HandlerSettings) -> Payload | None:
    """The image or tensor given for ``name`` ("content" / "style"), if any."""
    found = []
    for field, kind in ((name, "image"), (f"{name}_tensor", "tensor")):
        if _present(form.get(field)):
            found.append(Payload(_raw_bytes(form[field]), kind, field))
        elif _present(encoded.get(field)):
            found.append(Payload(_b64(encoded[field], field, settings), kind, field))
    if len(found) > 1:
        raise bad_option(f"send either {name!r} or '{name}_tensor', not both", name)
    if not found:
        return None
    payload = found[0]
    if len(payload.data) > settings.max_bytes:
        raise too_large(f"{payload.field} is {len(payload.data) / MIB:.1f} MiB; "
                        f"the limit is {settings.max_bytes / MIB:.0f} MiB", payload.field)
    return payload


def _present(value: Any) -> bool:
    return value is not None and not (isinstance(value, (bytes, bytearray, str))
                                      and len(value) == 0)


def _raw_bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):  # a text/* part, decoded by the worker: undo it
        return value.encode("utf-8")
    # an application/json part, parsed by the worker: not an image, the decoder will say so
    return json.dumps(value).encode("utf-8")


def _b64(value: Any, field: str, settings: HandlerSettings) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("ascii", "replace")
    if not isinstance(value, str):
        raise bad_option(f"JSON field {field!r} must be a base64 string", field)
    text = _DATA_URL.sub("", value.lstrip(), count=1)
    if len(text) * 3 // 4 > settings.max_bytes + 3:
        raise too_large(f"{field} is about {len(text) * 3 / 4 / MIB:.1f} MiB; "
                        f"the limit is {settings.max_bytes / MIB:.0f} MiB", field)
    compact = _WHITESPACE.sub(b"", text.encode("ascii", "replace"))
    altchars = b"-_" if (b"-" in compact or b"_" in compact) else None  # URL-safe alphabet
    try:
        return base64.b64decode(compact + b"=" * (-len(compact) % 4), altchars=altchars,
                                validate=True)
    except (binascii.Error, ValueError) as exc:
        raise bad_option(f"JSON field {field!r} is not valid base64: {exc}", field) from exc


def _text(value: Any, field: str) -> str:
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise bad_option(f"field {field!r} is not UTF-8 text", field) from exc
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    raise bad_option(f"field {field!r} must be text, got {type(value).__name__}", field)


def _int_option(values: Mapping[str, Any], name: str, default: int, lo: int, hi: int,
                unit: str = "pixels") -> int:
    raw = _text(values.get(name), name).strip()
    if not raw:
        return default
    try:
        number = float(raw)
        if not number.is_integer():
            raise ValueError(raw)
        result = int(number)
    except (ValueError, OverflowError) as exc:
        raise bad_option(f"{name} must be an integer number of {unit}, got {raw[:40]!r}",
                         name) from exc
    if not lo <= result <= hi:
        raise bad_option(f"{name} must be between {lo} and {hi} {unit}, got {result}", name)
    return result


def _format(value: Any) -> str:
    raw = _text(value, "format").strip().lower()
    if not raw:
        return "jpeg"
    if raw not in FORMATS:
        raise bad_option(f"format must be jpeg or png, got {raw[:20]!r}", "format")
    return FORMATS[raw]
