"""TorchServe's failures as one exception class, for the bot's async client and the scripts'
sync calls alike.

A :class:`TorchServeError` has a ``kind`` (one of the constants below: which message the bot
shows, whether to retry), a ``code`` (the handler's error code, or one of ours), the HTTP
``status`` and the decoded ``body`` when there was an answer, the request ``field`` the
handler blames, and the number of ``attempts`` made.
"""

from __future__ import annotations

import json
from typing import Any

# kinds of failure the bot distinguishes (each maps to one user message)
CLIENT = "client"  # the server refused the input: ``code`` says why (corrupt_image, ...)
BUSY = "busy"  # 503 after all retries
DOWN = "down"  # cannot connect / connection lost, after all retries
TIMEOUT = "timeout"  # no answer within the timeout
SERVER = "server"  # 5xx, unexpected answers, wrong model name, rejected key

# ``code`` of a SERVER error: TorchServe answered "Worker died." (500, or 507 when the worker
# exited with status 137, as a SIGKILL or the OOM killer leaves it) for a request its worker
# held when it died
WORKER_DIED = "worker_died"
# ``code`` of a SERVER error: a streamed (NDJSON) answer ended without its final line (the
# worker died, or the connection was lost, while it streamed)
STREAM_CUT = "stream_cut"
# ``code`` of a SERVER error: TorchServe refused the key (TorchServe 0.12 answers a wrong or
# expired key with HTTP 400 ``InvalidKeyException``, not 401; keys expire after
# ``token_expiration_min``)
INVALID_KEY = "invalid_key"


class TorchServeError(RuntimeError):
    """A failed TorchServe call: an error answer, no answer, or an answer we cannot use."""

    def __init__(
        self,
        message: str,
        status: int | None = None,
        body: Any = None,
        *,
        kind: str = SERVER,
        code: str = "",
        attempts: int = 1,
        field: str = "",
    ):
        super().__init__(message)
        self.message = message
        self.status = status
        self.body = body
        self.kind = kind
        self.code = code
        self.attempts = attempts
        self.field = field  # the request field the handler blames (content, style_2 ...)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(kind={self.kind!r}, code={self.code!r}, "
            f"status={self.status}, field={self.field!r}, attempts={self.attempts}, "
            f"message={self.message!r})"
        )


class InvalidKeyError(TorchServeError):
    """TorchServe refused the key: wrong, or expired (0.12 answers 400 InvalidKeyException)."""

    def __init__(self, message: str, status: int | None = None, body: Any = None, **kw: Any):
        kw.setdefault("code", INVALID_KEY)
        super().__init__(message, status, body, **kw)


class KeyFileError(TorchServeError):
    """key_file.json is unreadable, or not in TorchServe's format."""


def decode_body(body: Any) -> Any:
    """An answer's body as JSON when it is JSON (bytes or str), else as it came."""
    if isinstance(body, bytes | bytearray | str):
        try:
            return json.loads(body) if body else {}
        except ValueError:
            return body
    return body


def key_rejected(status: int | None, body: Any) -> bool:
    """Whether an answer refuses the key: TorchServe 0.12's 400 ``InvalidKeyException`` (a
    wrong or expired key), or a 401/403 from a proxy in front of it. ``body``: raw or
    decoded."""
    if status in (401, 403):
        return True
    if status != 400:
        return False
    data = decode_body(body)
    return isinstance(data, dict) and data.get("type") == "InvalidKeyException"


def answer_error(status: int, body: Any, attempt: int = 1) -> TorchServeError:
    """Map a non-200 answer: the handler's ``{"code": str, "message", "field"}`` first, then
    TorchServe's own errors (``{"code": int, "type", "message"}``) by status."""
    code, message, field = "", "", ""
    data: Any = body
    if isinstance(body, bytes | bytearray | str):
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            raw = body if isinstance(body, str) else bytes(body).decode("utf-8", "replace")
            message = raw[:200]
    if isinstance(data, dict):
        if isinstance(data.get("code"), str):
            code = data["code"]
        if isinstance(data.get("field"), str):
            field = data["field"]
        message = str(data.get("message") or data.get("type") or "")
    kw: dict[str, Any] = {"status": status, "body": data, "attempts": attempt}
    if status in (500, 507) and message == "Worker died." and not code:
        return TorchServeError(
            "the TorchServe worker died during the request", kind=SERVER, code=WORKER_DIED, **kw
        )
    if status == 503:
        return TorchServeError(message or "overloaded", kind=BUSY, code=code, **kw)
    if status == 413:
        return TorchServeError(
            message or "request too large", kind=CLIENT, code=code or "too_large", field=field, **kw
        )
    if status in (408, 504):
        return TorchServeError(message or "timed out", kind=TIMEOUT, **kw)
    if key_rejected(status, data):
        return InvalidKeyError(
            "the inference key was rejected (wrong or expired)", kind=SERVER, **kw
        )
    if 400 <= status < 500 and code:
        return TorchServeError(message, kind=CLIENT, code=code, field=field, **kw)
    return TorchServeError(message or f"HTTP {status}", kind=SERVER, code=code, **kw)
