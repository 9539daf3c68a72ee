"""The style predictor: an uploaded style's decoder affine, predicted in one pass.

An upload's encoder Gram is a poor target for a style the network was not trained on: the
generator, trained on 21 Grams, paints a new one much like its nearest preset. Learning a style
(:mod:`msgnet.learning.learn`) fits the decoder norms' per-channel scale and shift (``log γ``,
``β``) and that is most of the gain (docs/learn.md). This small network predicts that affine
from what the server already has for an upload: the encoder Gram's diagonal (log), the style
picture's colour mean, covariance and histogram. It is trained end to end on the VGG losses
through the frozen generator on 210 styles with colour augmentation
(:mod:`msgnet.training.predictor`, the style predictor of Ghiasi et al. 2017 in small).

The file sits beside the weights it was trained for (``NAME.predictor.pt`` next to
``NAME.pt``), carries their fingerprint, and loads with ``torch.load(weights_only=True)``. Its
last layer starts at zero, where a prediction is the identity: the upload's plain Gram.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

FORMAT = "image-styling/style-predictor"
FORMAT_VERSION = 2  # 2: the feature kind in the shape (files of kind gram-colour stay 1)
ENCODER_SIZE = 256  # the longest side the predictor's features are taken at (uploads' size)
HIST_BINS = 8
FEATURE_KINDS = ("gram-colour", "encoder-stats")  # what a predictor sees (style_features)


class PredictorError(ValueError):
    """The predictor file is not one, or was trained for other weights."""


def sidecar_path(weights_path: str | Path) -> Path:
    """``weights/NAME.pt`` -> ``weights/NAME.predictor.pt``, where a predictor is looked for."""
    p = Path(weights_path)
    return p.with_name(p.stem + ".predictor.pt")


def style_features(style_bgr: torch.Tensor, gram: torch.Tensor,
                   encoder: nn.Sequential | None = None, kind: str = "gram-colour"
                   ) -> torch.Tensor:
    """(1, 3, H, W) BGR 0..255 style at :data:`ENCODER_SIZE` and its encoder Gram (1, C, C)
    -> (1, F): what a predictor of ``kind`` (:data:`FEATURE_KINDS`) sees.

    ``gram-colour``: the Gram's log diagonal, the colour mean, covariance and histograms
    (C + 33). ``encoder-stats`` adds, from the ``encoder`` (the network's ``model1``), each
    stage's per-channel mean and log standard deviation — texture at three scales, which the
    Gram's diagonal mixes up — and histograms of the luminance and of its gradient (the
    contrast of ink and engravings that colour statistics miss)."""
    if kind not in FEATURE_KINDS:
        raise PredictorError(f"unknown feature kind {kind!r} (this code knows "
                             f"{', '.join(FEATURE_KINDS)})")
    diag = torch.log(gram[0].diagonal().float().clamp_min(1e-6))
    pixels = style_bgr[0].reshape(3, -1).float() / 255
    mean = pixels.mean(1)
    cov = torch.cov(pixels)
    iu = torch.triu_indices(3, 3)
    hist = torch.cat([_hist(pixels[i]) for i in range(3)])
    parts = [diag, mean, cov[iu[0], iu[1]] * 10, hist]
    if kind == "encoder-stats":
        if encoder is None:
            raise ValueError("encoder-stats features need the network's encoder")
        parts += _encoder_stats(encoder, style_bgr.float())
        luma = (0.114 * style_bgr[0, 0] + 0.587 * style_bgr[0, 1]
                + 0.299 * style_bgr[0, 2]).float() / 255
        grad = torch.cat([(luma[1:] - luma[:-1]).abs().flatten(),
                          (luma[:, 1:] - luma[:, :-1]).abs().flatten()])
        parts += [_hist(luma.flatten()), _hist(grad.clamp(max=0.5) * 2)]
    return torch.cat(parts).unsqueeze(0)


def _hist(values: torch.Tensor) -> torch.Tensor:
    return torch.histc(values, bins=HIST_BINS, min=0, max=1) / values.numel()


def _encoder_stats(encoder: nn.Sequential, x: torch.Tensor) -> list[torch.Tensor]:
    """Per-channel mean and log std after the encoder's first block (conv, norm, ReLU) and
    after each of its bottlenecks."""
    out = []
    for stage in (encoder[:3], encoder[3], encoder[4]):
        x = stage(x)
        f = x[0].flatten(1)
        out += [f.mean(1), torch.log(f.std(1) + 1e-3)]
    return out


class StylePredictor(nn.Module):
    """Features -> (B, 2, K) decoder affine (``log γ``, ``β``) for :meth:`Net.set_affine`."""

    def __init__(self, in_features: int, affine_size: int, hidden: int = 256,
                 bottleneck: int = 64, dropout: float = 0.0, features: str = "gram-colour"):
        super().__init__()
        if features not in FEATURE_KINDS:
            raise PredictorError(f"unknown feature kind {features!r} (this code knows "
                                 f"{', '.join(FEATURE_KINDS)})")
        self.features = features
        self.dropout = dropout  # on the bottleneck, in training only (not part of the file)
        self.register_buffer("mean", torch.zeros(in_features))
        self.register_buffer("std", torch.ones(in_features))
        self.body = nn.Sequential(nn.Linear(in_features, hidden), nn.GELU(),
                                  nn.Linear(hidden, bottleneck), nn.GELU())
        self.head = nn.Linear(bottleneck, 2 * affine_size)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.affine_size = affine_size
        self.metadata: dict = {}  # how it was trained (the file's free-form metadata)
        self.shape = {"in_features": in_features, "affine_size": affine_size,
                      "hidden": hidden, "bottleneck": bottleneck}
        if features != "gram-colour":  # files of the first kind stay as they were
            self.shape["features"] = features

    def describe(self, style_bgr: torch.Tensor, gram: torch.Tensor,
                 encoder: nn.Sequential) -> torch.Tensor:
        """The features this predictor was trained on (:func:`style_features`)."""
        return style_features(style_bgr, gram, encoder, self.features)

    def set_normalisation(self, features: torch.Tensor) -> None:
        """Standardise inputs by the training styles' statistics (N, F)."""
        self.mean.copy_(features.mean(0))
        self.std.copy_(features.std(0) + 1e-4)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        z = nn.functional.dropout(self.body((features - self.mean) / self.std), self.dropout,
                                  self.training)
        return self.head(z).reshape(-1, 2, self.affine_size)


def save_predictor(predictor: StylePredictor, path: str | Path, weights_fingerprint: str,
                   metadata: dict | None = None) -> None:
    """Write the predictor (fp16 values) for the weights with ``weights_fingerprint``."""
    state = {k: v.detach().to("cpu", torch.float16) if v.is_floating_point() else v
             for k, v in predictor.state_dict().items()}
    version = 1 if predictor.features == "gram-colour" else FORMAT_VERSION
    torch.save({"format": FORMAT, "format_version": version, "shape": predictor.shape,
                "weights_fingerprint": weights_fingerprint, "state_dict": state,
                "metadata": metadata or {}}, Path(path))


def load_predictor(path: str | Path, weights_fingerprint: str | None = None,
                   affine_size: int | None = None) -> StylePredictor:
    """Read a predictor file; :class:`PredictorError` when it is not one or when it was
    trained for other weights (``weights_fingerprint``) or another network (``affine_size``)."""
    try:
        blob = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: say which
        raise PredictorError(f"{path}: not a readable style predictor ({exc})") from exc
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise PredictorError(f"{path}: not a style predictor file")
    if blob.get("format_version", 0) > FORMAT_VERSION:
        raise PredictorError(f"{path}: format version {blob['format_version']} is newer than "
                             f"this code reads ({FORMAT_VERSION}); update image-styling")
    if weights_fingerprint is not None and blob["weights_fingerprint"] != weights_fingerprint:
        raise PredictorError(f"{path} was trained for other weights (fingerprint "
                             f"{blob['weights_fingerprint']}, these are {weights_fingerprint}); "
                             f"retrain it or remove it")
    shape = blob["shape"]
    if affine_size is not None and shape["affine_size"] != affine_size:
        raise PredictorError(f"{path} predicts {shape['affine_size']} norm channels, the "
                             f"network has {affine_size}")
    predictor = StylePredictor(**shape)
    predictor.load_state_dict({k: v.float() if v.is_floating_point() else v
                               for k, v in blob["state_dict"].items()})
    predictor.metadata = blob.get("metadata", {})
    return predictor.requires_grad_(False).eval()
