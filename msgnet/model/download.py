"""Download the authors' released MSG-Net weights (``21styles.model``).

The file is fetched with the standard library (no extra dependency), streamed to a temporary
file beside the destination and renamed only when complete (and, when a digest is given,
verified), so an interrupted download never leaves a half file under the real name. Without
network access it fails with a message that says how to get the file by hand.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

# release v0.1 of zhanghang1989/PyTorch-Multi-Style-Transfer; the repository's own
# experiments/models/download_model.sh points at the Dropbox copy, kept as a fallback
OFFICIAL_URL = ("https://github.com/zhanghang1989/PyTorch-Multi-Style-Transfer/releases/"
                "download/v0.1/21styles.model")
MIRROR_URLS = ("https://www.dropbox.com/s/2iz8orqqubrfrpo/21styles.model?dl=1",)
OFFICIAL_SHA256: str | None = None  # not published by the authors; the layout is checked instead
WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights"
OFFICIAL_PATH = WEIGHTS_DIR / "21styles.model"
CHUNK = 1 << 16
USER_AGENT = "image-styling/0.1 (+msgnet.model.download)"


class DownloadError(RuntimeError):
    """The file could not be fetched or verified; the message says what to do instead."""


def _offline_message(url: str, reason: object) -> str:
    return (f"cannot reach {url} ({reason}; offline?); download it by hand from {url} "
            "and pass --weights PATH")


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def download_file(url: str, dest: str | Path, *, expected_sha256: str | None = None,
                  timeout: float = 30, progress: bool = True) -> Path:
    """Stream ``url`` to ``dest`` (atomic rename, optional SHA-256 check); return ``dest``."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            received = 0
            with open(tmp, "wb") as fh, tqdm(total=total, unit="B", unit_scale=True,
                                              unit_divisor=1024, desc=dest.name,
                                              disable=not progress) as bar:
                while block := response.read(CHUNK):
                    fh.write(block)
                    digest.update(block)
                    received += len(block)
                    bar.update(len(block))
            if total is not None and received != total:
                raise DownloadError(f"download of {url} stopped after {received} of {total} "
                                    "bytes; try again, or download it by hand from "
                                    f"{url} and pass --weights PATH")
    except DownloadError:
        tmp.unlink(missing_ok=True)
        raise
    except urllib.error.HTTPError as exc:
        tmp.unlink(missing_ok=True)
        raise DownloadError(f"{url} answered HTTP {exc.code} {exc.reason}; download it by hand "
                            "and pass --weights PATH") from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        tmp.unlink(missing_ok=True)
        reason = getattr(exc, "reason", exc)
        raise DownloadError(_offline_message(url, reason)) from exc
    except (OSError, http.client.HTTPException) as exc:  # IncompleteRead, disk errors, ...
        tmp.unlink(missing_ok=True)
        raise DownloadError(f"download of {url} failed: {exc}; try again, or download it by "
                            f"hand from {url} and pass --weights PATH") from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    actual = digest.hexdigest()
    if expected_sha256 and actual.lower() != expected_sha256.lower():
        tmp.unlink(missing_ok=True)
        raise DownloadError(f"{url}: SHA-256 is {actual}, expected {expected_sha256}; "
                            "the file was not saved")
    shutil.move(str(tmp), dest)  # same folder: an atomic rename
    return dest


def download_official(dest: str | Path = OFFICIAL_PATH, *, urls: tuple[str, ...] | None = None,
                      timeout: float = 30, progress: bool = True) -> Path:
    """Fetch ``21styles.model`` from the release, then the mirror; check it loads as MSG-Net."""
    from msgnet.model.checkpoint import load_weights

    candidates = urls or (OFFICIAL_URL, *MIRROR_URLS)
    errors = []
    for url in candidates:
        try:
            path = download_file(url, dest, expected_sha256=OFFICIAL_SHA256, timeout=timeout,
                                 progress=progress)
            break
        except DownloadError as exc:
            errors.append(str(exc))
    else:
        if len(errors) == 1:
            raise DownloadError(errors[0])
        raise DownloadError(f"cannot download the official weights (offline?); download "
                            f"{candidates[0]} by hand and pass --weights PATH. Tried:\n  "
                            + "\n  ".join(errors))
    try:
        load_weights(path)
    except Exception as exc:
        bad = path.with_name(path.name + ".invalid")
        path.replace(bad)
        raise DownloadError(f"the downloaded file is not MSG-Net weights ({exc}); "
                            f"kept it as {bad}") from exc
    return path
