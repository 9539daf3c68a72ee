"""Loading and saving MSG-Net weights: the authors' ``21styles.model`` and our own file.

Two layouts are accepted:

* **official** - a bare state dict as saved by the authors' old PyTorch. It carries
  InstanceNorm ``running_mean``/``running_var`` keys (meaningless without affine/tracking, so
  they are dropped) and lists the shared encoder twice, as ``model1.*`` and ``model.0.*``.
* **ours** - a dict with ``format == "image-styling/msgnet"``: the generator's state dict
  (fp16 allowed), the preset bank (name -> upper triangle of the style's Gram matrix, since the
  matrix is symmetric and half of it is all we need to ship) and free-form metadata.

Both load with ``torch.load(weights_only=True)``, so a weights file cannot execute code.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import torch

from msgnet.model.net import EXPANSION, Net
from msgnet.model.predictor import StylePredictor, load_predictor, sidecar_path

FORMAT = "image-styling/msgnet"
# version 2 added the relative Inspiration skip; every other file is still written as 1, so
# code that predates it loads them, and refuses (rather than misreads) a relative skip
FORMAT_VERSION = 2
ENCODER_PREFIXES = ("model1.", "model.0.")
RUNNING_STAT_SUFFIXES = (".running_mean", ".running_var", ".num_batches_tracked")


class CheckpointError(ValueError):
    """The weights file does not match the MSG-Net layout; the message names the keys."""


@dataclass
class LoadedWeights:
    """A ready-to-run network plus what was shipped beside it."""

    net: Net
    presets: dict[str, torch.Tensor] = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)
    layout: str = "ours"
    predictor: StylePredictor | None = None  # uploads' decoder affine (msgnet.model.predictor)
    fingerprint: str | None = None  # the weights' fingerprint, once something needed it


def _name_list(keys: list[str], limit: int = 12) -> str:
    shown = ", ".join(sorted(keys)[:limit])
    return shown + (f" ... (+{len(keys) - limit} more)" if len(keys) > limit else "")


def _mirror_encoder(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Make sure both names of the shared encoder are present and agree."""
    state = dict(state)
    first, second = ENCODER_PREFIXES
    for src, dst in ((first, second), (second, first)):
        for key in [k for k in state if k.startswith(src)]:
            twin = dst + key[len(src):]
            if twin not in state:
                state[twin] = state[key]
            elif state[twin].shape != state[key].shape or not torch.equal(state[twin], state[key]):
                raise CheckpointError(
                    f"shared encoder differs between {key!r} and {twin!r}; they must be one module")
    return state


def convert_official_state_dict(raw: dict[str, torch.Tensor], ngf: int | None = None
                                ) -> tuple[dict[str, torch.Tensor], int]:
    """Map the authors' state dict to ours; return it with the inferred ``ngf``."""
    if "ins.weight" not in raw and "model.1.weight" not in raw:
        raise CheckpointError("not an MSG-Net state dict: no 'ins.weight' or 'model.1.weight' key")
    ins = raw.get("ins.weight", raw.get("model.1.weight"))
    inferred = int(ins.shape[-1]) // EXPANSION
    if ngf is not None and ngf != inferred:
        raise CheckpointError(f"ins.weight has {ins.shape[-1]} channels, expected ngf={ngf}")
    state = {k: v for k, v in raw.items() if not k.endswith(RUNNING_STAT_SUFFIXES)}
    # the Inspiration weight is registered twice as well: ``ins`` and ``model.1``
    for a, b in (("ins.weight", "model.1.weight"), ("model.1.weight", "ins.weight")):
        if a in state and b not in state:
            state[b] = state[a]
    state = _mirror_encoder(state)
    return state, inferred


def _check_and_load(net: Net, state: dict[str, torch.Tensor]) -> None:
    expected = net.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys: {_name_list(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_name_list(unexpected)}")
        raise CheckpointError("weights do not match MSG-Net: " + "; ".join(parts))
    wrong = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}"
             for k, v in expected.items() if state[k].shape != v.shape]
    if wrong:
        raise CheckpointError("shape mismatch: " + "; ".join(wrong[:8]))
    net.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)


def triu_pack(gram: torch.Tensor) -> torch.Tensor:
    """Upper triangle (incl. diagonal) of a (1, C, C) or (C, C) symmetric matrix."""
    g = gram.reshape(gram.shape[-2], gram.shape[-1])
    rows, cols = torch.triu_indices(g.shape[0], g.shape[1])
    return g[rows, cols]


def triu_unpack(packed: torch.Tensor, channels: int) -> torch.Tensor:
    """Inverse of :func:`triu_pack`; returns (1, C, C) float32."""
    rows, cols = torch.triu_indices(channels, channels)
    g = torch.zeros(channels, channels, dtype=torch.float32)
    g[rows, cols] = packed.float()
    g[cols, rows] = packed.float()
    return g.unsqueeze(0)


def weights_fingerprint(state_dict: dict[str, torch.Tensor]) -> str:
    """A short hash of the weights' values (not of a file: the same weights in a model
    archive, in fp16 on disk or loaded in fp32, give the same fingerprint)."""
    h = hashlib.sha256()
    for key in sorted(state_dict):
        t = state_dict[key].detach().to("cpu", torch.float16).contiguous()
        h.update(key.encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()[:16]


def load_weights(path: str | Path, map_location: str | torch.device = "cpu",
                 predictor: bool = True) -> LoadedWeights:
    """Load either layout into an eval-mode :class:`Net` (fp32), with the style predictor
    that sits beside the file (``NAME.predictor.pt``) unless ``predictor`` is False."""
    loaded = _load_file(Path(path), map_location)
    side = sidecar_path(path)
    if predictor and side.is_file():
        loaded.fingerprint = weights_fingerprint(loaded.net.state_dict())
        loaded.predictor = load_predictor(side, loaded.fingerprint, loaded.net.affine_size)
    return loaded


def _load_file(path: Path, map_location: str | torch.device) -> LoadedWeights:
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    try:
        raw = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file
        raise CheckpointError(f"cannot read weights file {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path}: expected a dict, got {type(raw).__name__}")
    if raw.get("format") == FORMAT:
        return _load_ours(raw)
    state, ngf = convert_official_state_dict(raw)
    net = Net(ngf=ngf)
    _check_and_load(net, state)
    return LoadedWeights(net=net.eval(), layout="official",
                         metadata={"source": "official 21styles.model layout", "ngf": ngf})


def _load_ours(raw: dict) -> LoadedWeights:
    if int(raw.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointError(f"weights format version {raw['format_version']} is newer than "
                              f"this code understands ({FORMAT_VERSION})")
    ngf = int(raw.get("ngf", 128))
    net = Net(ngf=ngf, n_blocks=int(raw.get("n_blocks", 6)),
              inspiration_skip=raw.get("inspiration_skip_mode")
              or bool(raw.get("inspiration_skip", False)))
    state = _mirror_encoder(raw["state_dict"])
    for name in ("weight", "skip"):  # the Inspiration layer is ``ins`` and ``model.1``
        if f"ins.{name}" in state and f"model.1.{name}" not in state:
            state[f"model.1.{name}"] = state[f"ins.{name}"]
    _check_and_load(net, state)
    presets = {name: triu_unpack(packed, net.channels)
               for name, packed in raw.get("presets", {}).items()}
    return LoadedWeights(net=net.eval(), presets=presets, metadata=dict(raw.get("metadata", {})),
                         layout="ours")


def canonical_state_dict(net: Net) -> dict[str, torch.Tensor]:
    """State dict without the duplicated names (``model.0.*``, ``model.1.*``)."""
    return {k: v for k, v in net.state_dict().items()
            if not k.startswith((ENCODER_PREFIXES[1], "model.1."))}


def save_weights(path: str | Path, net: Net, presets: dict[str, torch.Tensor] | None = None,
                 metadata: dict | None = None, half: bool = True) -> Path:
    """Write our single-file format (model + preset bank + metadata)."""
    dtype = torch.float16 if half else torch.float32
    state = {k: v.detach().to("cpu", dtype).contiguous()
             for k, v in canonical_state_dict(net).items()}
    bank = {name: triu_pack(g.detach().to("cpu", torch.float32)).to(dtype).contiguous()
            for name, g in (presets or {}).items()}
    meta = {"saved_at": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")}
    meta.update(metadata or {})
    version = FORMAT_VERSION if net.inspiration_skip_mode == "relative" else 1
    payload = {"format": FORMAT, "format_version": version, "ngf": net.ngf,
               "n_blocks": net.n_blocks, "inspiration_skip": net.inspiration_skip,
               "inspiration_skip_mode": net.inspiration_skip_mode,
               "state_dict": state,
               "presets": bank, "metadata": meta}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path
