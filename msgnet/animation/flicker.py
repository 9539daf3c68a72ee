"""The temporal flicker figure of a stylized clip.

``flicker = mean |out[k] - out[k-1]|  /  mean |in[k] - in[k-1]|`` over all pixels and frame
pairs, the input taken at the output's size. 1 means the output changes from frame to frame
as much as the input does; stylization with per-frame statistics typically adds change
(brightness and texture jumps) where the input barely moved, so the figure rises above it.
Streaming: only the previous frame of each is kept.
"""

from __future__ import annotations

import torch


class FlickerMeter:
    """Accumulates the frame-to-frame differences of an input clip and its output."""

    def __init__(self) -> None:
        self._prev: tuple[torch.Tensor, torch.Tensor] | None = None
        self.input_sum = 0.0
        self.output_sum = 0.0
        self.pairs = 0

    def add(self, frame_in: torch.Tensor, frame_out: torch.Tensor) -> None:
        """One frame: the input (resized to the output) and the output, same shape, 0..255."""
        if frame_in.shape != frame_out.shape:
            raise ValueError(f"input {tuple(frame_in.shape)} and output "
                             f"{tuple(frame_out.shape)} frames differ in shape")
        cur = (frame_in.detach().float(), frame_out.detach().float())
        if self._prev is not None:
            self.input_sum += float((cur[0] - self._prev[0]).abs().mean())
            self.output_sum += float((cur[1] - self._prev[1]).abs().mean())
            self.pairs += 1
        self._prev = cur

    @property
    def input_change(self) -> float:
        """Mean absolute frame-to-frame difference of the input (0..255)."""
        return self.input_sum / self.pairs if self.pairs else 0.0

    @property
    def output_change(self) -> float:
        return self.output_sum / self.pairs if self.pairs else 0.0

    @property
    def ratio(self) -> float | None:
        """Output change / input change; None for a still clip or a single frame."""
        if not self.pairs or self.input_sum == 0:
            return None
        return self.output_sum / self.input_sum
