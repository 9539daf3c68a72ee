"""VGG16 loss network (Caffe weights), the one MSG-Net's recipe is defined with.

Input convention is Caffe's: BGR, 0..255, minus the ImageNet mean per channel. The network
stops at relu4_3 and returns relu1_2, relu2_2, relu3_3 and relu4_3, by name.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from msgnet.model.net import gram_matrix

# B, G, R order, matching the BGR input
IMAGENET_MEAN_BGR = (103.939, 116.779, 123.68)
VGG16_WIDTHS = (64, 128, 256, 512)
# convs per stage up to conv4_3, and the name of each stage's last ReLU
_STAGES = (2, 2, 3, 3)
LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")
STYLE_LAYERS = LAYERS  # the recipe's Gram layers
CONTENT_LAYER = "relu2_2"

Features = dict[str, torch.Tensor]
"""Named activations, ``relu1_2`` .. ``relu4_3`` (or the first few of them)."""


class Vgg16Features(nn.Module):
    """conv1_1 .. conv4_3 with ReLUs and max-pools; ``widths`` shrinks it for tests."""

    def __init__(self, widths: tuple[int, int, int, int] = VGG16_WIDTHS):
        super().__init__()
        self.widths = widths
        cin = 3
        for stage, (n, width) in enumerate(zip(_STAGES, widths, strict=True), start=1):
            for i in range(1, n + 1):
                self.add_module(f"conv{stage}_{i}", nn.Conv2d(cin, width, 3, padding=1))
                cin = width
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN_BGR).view(1, 3, 1, 1),
                             persistent=False)
        self.requires_grad_(False)

    @classmethod
    def from_file(cls, path: str | Path, map_location: str = "cpu") -> Vgg16Features:
        """Load the ``vgg16_caffe_conv1_1-conv4_3.pt`` dict (fp32 or fp16)."""
        state = torch.load(path, map_location=map_location, weights_only=True)
        widths = tuple(int(state[f"conv{s}_1.weight"].shape[0]) for s in range(1, 5))
        net = cls(widths)  # type: ignore[arg-type]
        net.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
        return net.eval()

    def forward(self, bgr: torch.Tensor, upto: str = LAYERS[-1]) -> Features:
        """``{"relu1_2": ..., ..., "relu4_3": ...}``, or only the layers up to ``upto``.

        The content loss needs nothing past relu2_2, so the photo's pass stops there
        (``upto=CONTENT_LAYER``): at 128 px that skips ~2/3 of the pass's FLOPs.
        """
        last = LAYERS.index(upto)
        x = bgr - self.mean
        outputs: Features = {}
        for stage, name in enumerate(LAYERS[:last + 1], start=1):
            if stage > 1:
                x = F.max_pool2d(x, 2, 2)
            for i in range(1, _STAGES[stage - 1] + 1):
                x = F.relu(getattr(self, f"conv{stage}_{i}")(x))
            outputs[name] = x
        return outputs


def style_grams(features: Features) -> list[torch.Tensor]:
    """Gram matrices of the style layers, in :data:`STYLE_LAYERS` order."""
    return [gram_matrix(features[name]) for name in STYLE_LAYERS]


def gram_loss(grams: list[torch.Tensor], target_grams: list[torch.Tensor]) -> torch.Tensor:
    """Sum over layers of MSE between Gram matrices (targets broadcast over the batch)."""
    total = grams[0].new_zeros(())
    for g, target in zip(grams, target_grams, strict=True):
        total = total + F.mse_loss(g, target.expand_as(g))
    return total


def style_loss(features: Features, target_grams: list[torch.Tensor]) -> torch.Tensor:
    """The recipe's style loss: :func:`gram_loss` of the features' Grams."""
    return gram_loss(style_grams(features), target_grams)


def content_loss(features: Features, target_features: Features) -> torch.Tensor:
    """The recipe's content loss: MSE at relu2_2."""
    return F.mse_loss(features[CONTENT_LAYER], target_features[CONTENT_LAYER])
