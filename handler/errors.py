"""Per-request errors of the MSG-Net handler and their JSON form.

Every user-facing failure becomes a :class:`RequestError` carrying the HTTP status, a stable
machine-readable ``code`` (clients such as the bot switch on it) and, when one request field
is to blame, that ``field``; the handler turns it into the body ``{"code": ..., "message": ...}``
(plus ``"field"`` when one is at fault) and sets the status for that request only, so one bad
request never fails the others of its server-side batch.
"""

from __future__ import annotations

import json
from http import HTTPStatus

from msgnet.imageio import CorruptImageError, ImageTooLargeError, NotAnImageError

# the stable codes of the REST contract (docs/serving.md); the image codes are msgnet's own
NOT_AN_IMAGE = NotAnImageError.code
CORRUPT_IMAGE = CorruptImageError.code
TOO_LARGE = ImageTooLargeError.code
BAD_OPTION = "bad_option"
UNKNOWN_PRESET = "unknown_preset"
NO_PREVIEW = "no_preview"
MISSING_FIELD = "missing_field"
INTERNAL_ERROR = "internal_error"
MAX_MESSAGE = 300  # characters; a crafted field or header must not come back in full
MAX_SHOWN = 40     # characters of a client's value quoted in a message


def shown(value: object, limit: int = MAX_SHOWN) -> str:
    """``repr`` of a client-supplied value, cut to ``limit`` characters (ends with ...)."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def short(text: str, limit: int = MAX_MESSAGE) -> str:
    """The first line of ``text``, at most ``limit`` characters: library error strings can
    quote a whole crafted header back."""
    line = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return line if len(line) <= limit else line[:limit - 3] + "..."


class RequestError(Exception):
    """A failure of one request, reported to its client with ``status`` and ``code``;
    ``field`` names the request field at fault (``content``, ``style_2``, ``size`` ...)."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        message = short(message)
        super().__init__(message)
        self.status = int(status)
        self.code = code
        self.message = message
        self.field = field

    @property
    def phrase(self) -> str:
        """The HTTP reason phrase (TorchServe sends an empty one unless we set it)."""
        try:
            return HTTPStatus(self.status).phrase
        except ValueError:
            return "Error"

    def to_json(self) -> str:
        body = {"code": self.code, "message": self.message}
        return json.dumps(body if self.field is None else {**body, "field": self.field})

    def __repr__(self) -> str:
        return (f"RequestError({self.status}, {self.code!r}, {self.message!r}, "
                f"field={self.field!r})")


def bad_option(message: str, field: str | None = None) -> RequestError:
    return RequestError(400, BAD_OPTION, message, field)


def missing_field(message: str, field: str | None = None) -> RequestError:
    return RequestError(422, MISSING_FIELD, message, field)


def not_an_image(message: str, field: str | None = None) -> RequestError:
    return RequestError(NotAnImageError.http_status, NOT_AN_IMAGE, message, field)


def corrupt_image(message: str, field: str | None = None) -> RequestError:
    return RequestError(CorruptImageError.http_status, CORRUPT_IMAGE, message, field)


def too_large(message: str, field: str | None = None) -> RequestError:
    return RequestError(ImageTooLargeError.http_status, TOO_LARGE, message, field)


def unknown_preset(name: str, available: list[str]) -> RequestError:
    listed = ", ".join(available) if available else "none (these weights ship no presets)"
    return RequestError(404, UNKNOWN_PRESET, f"unknown preset {shown(name)}; available: {listed}")


def internal_error(message: str = "stylization failed on the server") -> RequestError:
    return RequestError(500, INTERNAL_ERROR, message)


def from_exception(exc: BaseException) -> RequestError:
    """Map an exception raised while serving one request to its :class:`RequestError`.

    ``msgnet.imageio.ImageError`` carries its own ``code``/``http_status``; anything else is
    an internal error (its details go to the log, not to the client).
    """
    if isinstance(exc, RequestError):
        return exc
    code = getattr(exc, "code", None)
    status = getattr(exc, "http_status", None)
    if isinstance(code, str) and isinstance(status, int):
        return RequestError(status, code, str(exc))
    return internal_error()
