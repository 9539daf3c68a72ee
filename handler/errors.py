"""Per-request errors of the MSG-Net handler and their JSON form.

Every user-facing failure becomes a :class:`RequestError` carrying the HTTP status and a stable
machine-readable ``code`` (clients such as the bot switch on it); the handler turns it into the
body ``{"code": ..., "message": ...}`` and sets the status for that request only, so one bad
request never fails the others of its server-side batch.
"""

from __future__ import annotations

import json
from http import HTTPStatus

# the stable codes of the REST contract (docs/serving.md)
NOT_AN_IMAGE = "not_an_image"
CORRUPT_IMAGE = "corrupt_image"
BAD_OPTION = "bad_option"
UNKNOWN_PRESET = "unknown_preset"
NO_PREVIEW = "no_preview"
TOO_LARGE = "too_large"
MISSING_FIELD = "missing_field"
INTERNAL_ERROR = "internal_error"


class RequestError(Exception):
    """A failure of one request, reported to its client with ``status`` and ``code``."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status = int(status)
        self.code = code
        self.message = message

    @property
    def phrase(self) -> str:
        """The HTTP reason phrase (TorchServe sends an empty one unless we set it)."""
        try:
            return HTTPStatus(self.status).phrase
        except ValueError:
            return "Error"

    def to_json(self) -> str:
        return json.dumps({"code": self.code, "message": self.message})

    def __repr__(self) -> str:
        return f"RequestError({self.status}, {self.code!r}, {self.message!r})"


def bad_option(message: str) -> RequestError:
    return RequestError(400, BAD_OPTION, message)


def missing_field(message: str) -> RequestError:
    return RequestError(422, MISSING_FIELD, message)


def not_an_image(message: str) -> RequestError:
    return RequestError(400, NOT_AN_IMAGE, message)


def corrupt_image(message: str) -> RequestError:
    return RequestError(400, CORRUPT_IMAGE, message)


def too_large(message: str) -> RequestError:
    return RequestError(413, TOO_LARGE, message)


def unknown_preset(name: str, available: list[str]) -> RequestError:
    shown = ", ".join(available) if available else "none (these weights ship no presets)"
    return RequestError(404, UNKNOWN_PRESET, f"unknown preset {name!r}; available: {shown}")


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
