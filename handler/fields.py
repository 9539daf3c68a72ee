"""Reading the fields of one TorchServe request dict, each checked and named in its errors.

What TorchServe 0.12 puts in the dict (checked against its frontend and worker code):

* multipart/form-data and x-www-form-urlencoded: one key per field (a repeated name keeps the
  last value). File parts arrive as ``bytearray``, except that a part sent as ``text/*`` is
  decoded to ``str`` and one sent as ``application/json`` to a parsed object;
* any other body: the single key ``"body"`` - parsed already when the request's Content-Type is
  ``application/json``, raw ``bytearray`` otherwise;
* query-string parameters only for ``POST /invocations?model_name=...`` and the legacy
  ``POST /<model>/predict``; ``/predictions/...`` drops the query string in the frontend.

Images in form fields are raw file bytes; in a JSON body they are base64 strings (a
``data:...;base64,`` prefix is accepted). :class:`Fields` hides these differences from the
request types built on it (:mod:`handler.parsing`, :mod:`handler.actions`,
:mod:`handler.learning`): every reader returns a plain value or raises a
:class:`handler.errors.RequestError` whose ``field`` is the field's name.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from handler.cancel import check_token
from handler.errors import bad_option, short, shown, too_large
from handler.settings import MIB, HandlerSettings
from msgnet.inference.control_values import MAX_STYLES, ControlError
from msgnet.learning import style_store

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


class Fields:
    """One request's fields: the form and query values, and those of a JSON body (whose
    images are base64); a JSON body's value wins over a form field of the same name."""

    def __init__(self, raw: Mapping[str, Any], settings: HandlerSettings):
        self.form, self.encoded = _split_sources(raw)
        self.values = {**self.form, **self.encoded}
        self.settings = settings

    def get(self, name: str) -> Any:
        return self.values.get(name)

    def present(self, name: str) -> bool:
        return present(self.values.get(name))

    def text(self, name: str) -> str:
        return text(self.values.get(name), name)

    def int_option(self, name: str, default: int, lo: int, hi: int,
                   unit: str = "pixels") -> int:
        """An integer in ``[lo, hi]`` (``1e3`` and ``512.0`` too), ``default`` when absent."""
        raw = self.text(name).strip()
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

    def control(self, check: Callable[[Any, str], Any], name: str, default: Any) -> Any:
        """A control's value through its :mod:`msgnet.inference.control_values` check."""
        raw = self.values.get(name)
        if not present(raw):
            return default
        value = raw if isinstance(raw, (bool, int, float)) else text(raw, name).strip()
        try:
            return check(value, name)
        except ControlError as exc:
            raise bad_option(str(exc), name) from exc

    def token(self, name: str) -> str | None:
        """A cancel token (:func:`handler.cancel.check_token`), or None when absent."""
        return check_token(self.values[name], name) if self.present(name) else None

    def style_id(self) -> str | None:
        """``style_id`` as text; a JSON list of names is joined with commas."""
        value = self.values.get("style_id")
        if isinstance(value, list):
            value = ",".join(text(v, "style_id") for v in value)
        raw = text(value, "style_id").strip()
        if len(raw) > 100 * MAX_STYLES:
            raise bad_option(f"style_id is longer than {100 * MAX_STYLES} characters",
                             "style_id")
        return raw or None

    def owner(self) -> str:
        """``owner`` (default ``local``): one folder of the style store, so never a path."""
        raw = self.text("owner").strip()
        if not raw:
            return style_store.DEFAULT_OWNER
        try:
            return style_store.check_owner(raw)
        except style_store.StyleStoreError:
            raise bad_option(f"owner must be 1-64 of A-Z a-z 0-9 . _ - starting with a letter "
                             f"or digit, got {shown(raw)}", "owner") from None

    def payload(self, name: str) -> Payload | None:
        """The image or tensor given for ``name`` ("content", "style", "style_2" ...)."""
        found = []
        for field, kind in ((name, "image"), (f"{name}_tensor", "tensor")):
            if present(self.form.get(field)):
                found.append(Payload(_raw_bytes(self.form[field]), kind, field))
            elif present(self.encoded.get(field)):
                found.append(Payload(self._b64(self.encoded[field], field), kind, field))
        if len(found) > 1:
            raise bad_option(f"send either {name!r} or '{name}_tensor', not both", name)
        if not found:
            return None
        payload = found[0]
        if len(payload.data) > self.settings.max_bytes:
            raise too_large(f"{payload.field} is {len(payload.data) / MIB:.1f} MiB; "
                            f"the limit is {self.settings.max_bytes / MIB:.0f} MiB",
                            payload.field)
        return payload

    def _b64(self, value: Any, field: str) -> bytes:
        if isinstance(value, (bytes, bytearray)):
            value = bytes(value).decode("ascii", "replace")
        if not isinstance(value, str):
            raise bad_option(f"JSON field {field!r} must be a base64 string", field)
        encoded = _DATA_URL.sub("", value.lstrip(), count=1)
        max_bytes = self.settings.max_bytes
        if len(encoded) * 3 // 4 > max_bytes + 3:
            raise too_large(f"{field} is about {len(encoded) * 3 / 4 / MIB:.1f} MiB; "
                            f"the limit is {max_bytes / MIB:.0f} MiB", field)
        compact = _WHITESPACE.sub(b"", encoded.encode("ascii", "replace"))
        altchars = b"-_" if (b"-" in compact or b"_" in compact) else None  # URL-safe alphabet
        try:
            return base64.b64decode(compact + b"=" * (-len(compact) % 4), altchars=altchars,
                                    validate=True)
        except (binascii.Error, ValueError) as exc:
            raise bad_option(f"JSON field {field!r} is not valid base64: {exc}", field) from exc


def wants_progress(raw: Mapping[str, Any]) -> bool:
    """The request's ``progress`` field (form or JSON body) is true."""
    value = raw.get("progress")
    body = raw.get("body")
    if value is None and isinstance(body, dict):
        value = body.get("progress")
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("utf-8", "replace")
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def store_name(raw: str, field: str) -> str:
    """A learned style's name as the store checks it (never a path), or a 400 on ``field``."""
    try:
        return style_store.check_name(raw)
    except style_store.StyleStoreError as exc:
        raise bad_option(f"{field}: {exc}", field) from None


def present(value: Any) -> bool:
    """A field counts as given unless it is absent or empty."""
    return value is not None and not (isinstance(value, (bytes, bytearray, str))
                                      and len(value) == 0)


def text(value: Any, field: str) -> str:
    """A field as text: UTF-8 bytes, a string or a JSON number."""
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


def _raw_bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):  # a text/* part, decoded by the worker: undo it
        return value.encode("utf-8")
    # an application/json part, parsed by the worker: not an image, the decoder will say so
    return json.dumps(value).encode("utf-8")
