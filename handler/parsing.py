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

from handler.errors import bad_option, missing_field, too_large
from handler.settings import MIB, HandlerSettings

IMAGE_FIELDS = ("content", "style")
TENSOR_FIELDS = ("content_tensor", "style_tensor")
ACTIONS = ("stylize", "presets", "preview")
FORMATS = {"jpeg": "jpeg", "jpg": "jpeg", "png": "png"}
_DATA_URL = re.compile(r"^data:[^,]{0,200};base64,", re.IGNORECASE)
_WHITESPACE = re.compile(rb"\s+")


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
class StylizeRequest:
    content: Payload
    style: Payload | None  # exactly one of style / style_id is set
    style_id: str | None
    size: int
    style_size: int
    fmt: str               # "jpeg" | "png"


@dataclass(frozen=True)
class ActionRequest:
    action: str            # "presets" | "preview"
    style_id: str | None


def parse_request(fields: Mapping[str, Any], settings: HandlerSettings
                  ) -> StylizeRequest | ActionRequest:
    """Validate one request; raises :class:`handler.errors.RequestError` with its status."""
    form, encoded = _split_sources(fields)
    values = {**form, **encoded}

    action = _text(values.get("action"), "action").lower() or "stylize"
    if action not in ACTIONS:
        raise bad_option(f"unknown action {action!r}; use one of {', '.join(ACTIONS)}")
    style_id = _text(values.get("style_id"), "style_id").strip() or None
    if style_id is not None and len(style_id) > 100:
        raise bad_option("style_id is longer than 100 characters")
    if action == "presets":
        return ActionRequest("presets", style_id)
    if action == "preview":
        if style_id is None:
            raise missing_field("action 'preview' needs a style_id")
        return ActionRequest("preview", style_id)

    content = _payload(form, encoded, "content", settings)
    style = _payload(form, encoded, "style", settings)
    if content is None:
        raise missing_field("field 'content' (an image) is required"
                            " - or 'content_tensor' (.npy / safetensors)")
    if style is None and style_id is None:
        raise missing_field("a style is required: field 'style' (an image), 'style_tensor' "
                            "or 'style_id' (a preset name)")
    if style is not None and style_id is not None:
        raise bad_option("send either a style image or a style_id, not both")
    return StylizeRequest(
        content=content,
        style=style,
        style_id=style_id,
        size=_int_option(values, "size", settings.default_size, settings.min_size,
                         settings.max_size),
        style_size=_int_option(values, "style_size", settings.default_style_size,
                               settings.min_size, settings.max_size),
        fmt=_format(values.get("format")),
    )


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
            raise bad_option(f"request body is not valid JSON: {exc}") from exc
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
        raise bad_option(f"send either {name!r} or '{name}_tensor', not both")
    if not found:
        return None
    payload = found[0]
    if len(payload.data) > settings.max_bytes:
        raise too_large(f"{payload.field} is {len(payload.data) / MIB:.1f} MiB; "
                        f"the limit is {settings.max_bytes / MIB:.0f} MiB")
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
        raise bad_option(f"JSON field {field!r} must be a base64 string")
    text = _DATA_URL.sub("", value.lstrip(), count=1)
    if len(text) * 3 // 4 > settings.max_bytes + 3:
        raise too_large(f"{field} is about {len(text) * 3 / 4 / MIB:.1f} MiB; "
                        f"the limit is {settings.max_bytes / MIB:.0f} MiB")
    compact = _WHITESPACE.sub(b"", text.encode("ascii", "replace"))
    altchars = b"-_" if (b"-" in compact or b"_" in compact) else None  # URL-safe alphabet
    try:
        return base64.b64decode(compact + b"=" * (-len(compact) % 4), altchars=altchars,
                                validate=True)
    except (binascii.Error, ValueError) as exc:
        raise bad_option(f"JSON field {field!r} is not valid base64: {exc}") from exc


def _text(value: Any, field: str) -> str:
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise bad_option(f"field {field!r} is not UTF-8 text") from exc
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    raise bad_option(f"field {field!r} must be text, got {type(value).__name__}")


def _int_option(values: Mapping[str, Any], name: str, default: int, lo: int, hi: int) -> int:
    raw = _text(values.get(name), name).strip()
    if not raw:
        return default
    try:
        number = float(raw)
        if not number.is_integer():
            raise ValueError(raw)
        result = int(number)
    except (ValueError, OverflowError) as exc:
        raise bad_option(f"{name} must be an integer number of pixels, got {raw[:40]!r}") from exc
    if not lo <= result <= hi:
        raise bad_option(f"{name} must be between {lo} and {hi} pixels, got {result}")
    return result


def _format(value: Any) -> str:
    raw = _text(value, "format").strip().lower()
    if not raw:
        return "jpeg"
    if raw not in FORMATS:
        raise bad_option(f"format must be jpeg or png, got {raw[:20]!r}")
    return FORMATS[raw]
