"""The batched forward pass, with failure isolation between the requests of a batch.

All good requests of a server-side batch go through :meth:`msgnet.stylize.Stylizer.run` at
once (it groups equal shapes into one forward). If that call raises, the jobs are retried one
by one, so a single request that breaks the model (say, out of memory at its size) fails alone
with a 500 JSON answer instead of turning the whole batch into TorchServe's generic 503.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

import torch
from PIL import Image

from handler import errors
from handler.parsing import SheetRequest
from msgnet.controls import DEFAULT_CONTROLS, Controls

log = logging.getLogger(__name__)


class _Runner(Protocol):
    def run(self, contents: list[torch.Tensor], targets: list[torch.Tensor],
            controls: list[Controls] | None = None) -> list[torch.Tensor]: ...


@dataclass
class Job:
    """A parsed and decoded request waiting for the forward pass."""

    idx: int               # position in the TorchServe batch
    content: torch.Tensor  # (1, 3, h, w) BGR 0..255, already at the output size
    target: torch.Tensor   # (1, C, C) style Gram matrix
    fmt: str               # output format, "jpeg" | "png"
    controls: Controls = DEFAULT_CONTROLS  # strength, colours (msgnet.controls)


@dataclass
class SheetJob:
    """A contact-sheet request with its decoded photo."""

    idx: int
    photo: Image.Image
    request: SheetRequest


@dataclass
class Batch:
    """One server-side batch between the handler's phases: the answers so far (``out``, by
    request index), the work for inference, and its results (a tensor, a sheet image, or
    the exception that request alone answers with)."""

    out: list[bytes | str]
    jobs: list[Job] = field(default_factory=list)
    sheets: list[SheetJob] = field(default_factory=list)
    clips: list = field(default_factory=list)  # handler.clips.ClipJob, after the photos
    results: dict[int, object] = field(default_factory=dict)  # tensor, sheet, clip or error


def run_isolated(stylizer: _Runner, jobs: list[Job]
                 ) -> dict[int, torch.Tensor | errors.RequestError]:
    """Output tensor per job index, or the RequestError that job alone must answer with."""
    if not jobs:
        return {}
    try:
        with torch.inference_mode():
            outputs = stylizer.run([j.content for j in jobs], [j.target for j in jobs],
                                   [j.controls for j in jobs])
        if len(outputs) != len(jobs):
            raise RuntimeError(f"stylizer returned {len(outputs)} outputs for {len(jobs)} jobs")
        return {job.idx: out for job, out in zip(jobs, outputs, strict=True)}
    except Exception:
        if len(jobs) == 1:
            log.exception("stylization failed for request %d", jobs[0].idx)
            return {jobs[0].idx: errors.internal_error()}
        log.exception("batched stylization of %d jobs failed; retrying one by one", len(jobs))
    results: dict[int, torch.Tensor | errors.RequestError] = {}
    for job in jobs:
        results.update(run_isolated(stylizer, [job]))
    return results
