"""The batched forward pass, with failure isolation between the requests of a batch.

The good requests of a server-side batch go through :meth:`msgnet.inference.stylize.Stylizer.run` in
groups of at most ``pixel_budget`` output pixels (it batches equal shapes into one forward),
so four 1024 px requests do not run as one 4-megapixel pass: the worker's memory grows with
the pixels of a pass, and the container's limit does not (docs/reliability.md). If a run
raises, its jobs are retried one by one, so a single request that breaks the model (say, out
of memory at its size) fails alone with a 500 JSON answer instead of turning the whole batch
into TorchServe's generic 503.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

import torch
from PIL import Image

from handler import errors
from handler.parsing import SheetRequest
from msgnet.inference.controls import DEFAULT_CONTROLS, Controls

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
    controls: Controls = DEFAULT_CONTROLS  # strength, colours (msgnet.inference.controls)
    headers: dict[str, str] = field(default_factory=dict)  # the style cache's state


@dataclass
class SheetJob:
    """A contact-sheet request with its decoded photo (its cells run in inference)."""

    idx: int
    photo: Image.Image
    request: SheetRequest


def pixels(job: Job) -> int:
    """Output pixels of a job (its content is already at the output size)."""
    return int(job.content.shape[-2]) * int(job.content.shape[-1])


def split_by_pixels(jobs: list[Job], budget: int) -> list[list[Job]]:
    """Groups of jobs whose output pixels add up to at most ``budget`` (0: one group).

    Equal shapes are kept next to each other so that they still share forward passes; a job
    over the budget alone is a group of its own (above ``tile_pixels`` it runs tiled, in
    bounded memory, anyway). Instance norm works per image, so the split changes no result.
    """
    if budget <= 0 or sum(pixels(j) for j in jobs) <= budget:
        return [list(jobs)] if jobs else []
    ordered = sorted(jobs, key=lambda j: (-pixels(j), tuple(j.content.shape[-2:]), j.idx))
    groups: list[list[Job]] = []
    used = 0
    for job in ordered:
        if groups and used + pixels(job) <= budget:
            groups[-1].append(job)
            used += pixels(job)
        else:
            groups.append([job])
            used = pixels(job)
    return groups


def run_in_budget(stylizer: _Runner, jobs: list[Job], pixel_budget: int
                  ) -> dict[int, torch.Tensor | errors.RequestError]:
    """:func:`run_isolated` on each group of :func:`split_by_pixels`."""
    results: dict[int, torch.Tensor | errors.RequestError] = {}
    for group in split_by_pixels(jobs, pixel_budget):
        results.update(run_isolated(stylizer, group))
    return results


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
