"""One set of instance-norm statistics for every frame of a clip, against flicker.

Instance norm normalises each frame with its own per-channel mean and variance; when a hand
moves or the light changes, every frame's statistics move a little and the whole stylized
frame shifts in brightness and texture: the clip flickers. The tiling already runs the network
with frozen statistics (:mod:`msgnet.inference.tiling`: recorded on a thumbnail, replayed on the
tiles); here the same ``stats_fn`` hook replays a *reference* taken from the clip itself:

* ``"first"``: the statistics the first frame's own pass used, for every later frame;
* ``"running"``: frame k uses the mean of the statistics frames 0..k-1 would have had; each
  frame's pass observes its own per-layer statistics while replaying the reference (one
  extra reduction per layer, no second pass);
* ``"off"``: per-frame statistics, as for a photo (the baseline the flicker figure compares).
"""

from __future__ import annotations

import torch

from msgnet.inference.fast import Stats, compute_stats

REFERENCES = ("first", "running", "off")


class ReferenceStats:
    """A ``stats_fn`` for :class:`msgnet.inference.fast.FastMSGNet` that spans frames: call
    :meth:`start_frame` before each frame's pass and :meth:`end_frame` after it."""

    def __init__(self, mode: str = "first"):
        if mode not in REFERENCES:
            raise ValueError(f"unknown statistics reference {mode!r}; use one of "
                             f"{', '.join(REFERENCES)}")
        self.mode = mode
        self.reference: list[Stats] | None = None
        self._sums: list[list[torch.Tensor]] | None = None
        self._frames = 0
        self._index = 0
        self._seen: list[Stats] = []

    def start_frame(self) -> None:
        self._index = 0
        self._seen = []

    def __call__(self, x: torch.Tensor) -> Stats:
        replay = self.reference is not None and self.mode != "off"
        if not replay or self.mode == "running":
            self._seen.append(compute_stats(x))
        if not replay:
            return self._seen[-1]
        if self._index >= len(self.reference):
            raise RuntimeError("more instance norms than reference statistics")
        mean, var = self.reference[self._index]
        if mean.shape[0] != x.shape[1]:
            raise RuntimeError(f"reference statistics for {mean.shape[0]} channels, "
                               f"layer has {x.shape[1]}")
        self._index += 1
        return mean, var

    def end_frame(self) -> None:
        if self.mode == "off":
            return
        if self.reference is not None and self._index != len(self.reference):
            raise RuntimeError(f"used {self._index} of {len(self.reference)} statistics")
        if self.mode == "first":
            if self.reference is None:
                self.reference = [(m.clone(), v.clone()) for m, v in self._seen]
            return
        if self._sums is None:
            self._sums = [[m.clone(), v.clone()] for m, v in self._seen]
        else:
            for acc, (m, v) in zip(self._sums, self._seen, strict=True):
                acc[0].add_(m)
                acc[1].add_(v)
        self._frames += 1
        self.reference = [(m / self._frames, v / self._frames) for m, v in self._sums]
