"""The process's allocator, tuned for large tensors (glibc's ``mallopt``).

glibc serves big blocks with fresh ``mmap`` pages, so every large temporary costs page faults
and kernel zeroing, about as much as the convolutions at 512 px; :func:`tune_allocator` keeps
freed blocks in the heap for reuse.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import threading

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_allocator_lock = threading.Lock()
_allocator_tuned = False


def tune_allocator(keep_bytes: int = 1 << 30) -> bool:
    """Serve large tensors from the malloc heap instead of fresh mmap pages (glibc only).

    Up to ``keep_bytes`` of freed memory stays mapped for reuse (``M_TRIM_THRESHOLD``); beyond
    that glibc gives it back, so the resident size after a big request falls again. Process-wide
    and idempotent; returns False where mallopt is unavailable (then nothing changes).
    """
    global _allocator_tuned
    with _allocator_lock:
        if _allocator_tuned:
            return True
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
        except (OSError, AttributeError):
            return False
        ok = mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, int(keep_bytes)) == 1
        _allocator_tuned = ok
        return ok


def allocator_tuned() -> bool:
    """Whether :func:`tune_allocator` has changed this process's allocator (benchmarks report
    it: the setting is process-wide and speeds up every model in the process)."""
    return _allocator_tuned
