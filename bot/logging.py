"""Logging set-up: plain or JSON lines, with secrets scrubbed from every record.

The bot token is part of every Bot API URL (``/bot<token>/<method>``) and of file download
URLs, so any exception that quotes a URL (aiohttp's ``ClientResponseError`` does) would print
it. Rather than trusting every log call, the formatter replaces each secret in the final text,
tracebacks included.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable

REDACTED = "***"


class RedactingFormatter(logging.Formatter):
    """A formatter that removes known secrets from the formatted record."""

    def __init__(self, secrets: Iterable[str] = (), json_lines: bool = False):
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)
        self.json_lines = json_lines

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text

    def format(self, record: logging.LogRecord) -> str:
        if not self.json_lines:
            return self.redact(super().format(record))
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return self.redact(json.dumps(entry, ensure_ascii=False))


def setup_logging(level: str = "INFO", json_lines: bool = False,
                  secrets: Iterable[str] = ()) -> logging.Handler:
    """Log to stderr through a :class:`RedactingFormatter`; returns the handler."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter(secrets, json_lines))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # aiohttp's access log repeats every webhook request at INFO; keep it for debugging only
    logging.getLogger("aiohttp.access").setLevel(
        logging.DEBUG if level == "DEBUG" else logging.WARNING)
    return handler
