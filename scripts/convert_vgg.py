"""Convert Keras' VGG16 weights (``vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5``) into the
loss-network file that ``train``, ``evaluate`` and ``learn`` take (``--vgg``).

Keras' VGG16 is Caffe's, converted: it takes the same BGR, 0..255, mean-subtracted input as
``msgnet/learning/vgg.py``, so only the layout changes (kernels ``(kh, kw, in, out)`` -> torch's
``(out, in, kh, kw)``). torchvision's VGG16 is a different, retrained network and is not a
substitute (docs/data.md says why and where the file comes from).

    .venv/bin/pip install h5py
    .venv/bin/python -m scripts.convert_vgg vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5 \\
        -o weights/vgg16_caffe_conv1_1-conv4_3.pt
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from msgnet.learning.vgg import Vgg16Features

# conv layers per block up to conv4_3, as msgnet/learning/vgg.py builds them
BLOCKS = ((1, 2), (2, 2), (3, 3), (4, 3))
DEFAULT_OUTPUT = Path("weights/vgg16_caffe_conv1_1-conv4_3.pt")


class ConvertError(Exception):
    """The input is not Keras' VGG16 weights file (or h5py is missing)."""


def convert(h5_path: Path) -> dict[str, torch.Tensor]:
    """``{"conv1_1.weight": ..., "conv1_1.bias": ..., ... "conv4_3.bias": ...}`` in fp32."""
    try:
        import h5py  # only this converter needs it
    except ImportError as exc:
        raise ConvertError("h5py is needed to read Keras' .h5 file: "
                           ".venv/bin/pip install h5py") from exc
    out: dict[str, torch.Tensor] = {}
    try:
        f = h5py.File(h5_path, "r")
    except OSError as exc:
        raise ConvertError(f"{h5_path}: not an HDF5 file ({exc})") from exc
    with f:
        # Keras' save_weights layout: a group per layer, its datasets named by 'weight_names'
        # ("block1_conv1_W_1:0" in the release file, "block1_conv1/kernel:0" in newer saves)
        for block, convs in BLOCKS:
            for i in range(1, convs + 1):
                layer_name = f"block{block}_conv{i}"
                if layer_name not in f:
                    raise ConvertError(f"{h5_path}: no layer {layer_name} (not Keras' VGG16)")
                layer = f[layer_name]
                names = [n.decode() if isinstance(n, bytes) else str(n)
                         for n in layer.attrs.get("weight_names", [])]
                arrays = [layer[name][()] for name in names]
                kernels = [a for a in arrays if a.ndim == 4]
                biases = [a for a in arrays if a.ndim == 1]
                if len(kernels) != 1 or len(biases) != 1:
                    raise ConvertError(f"{h5_path}: {layer_name} holds {names}, expected one "
                                       "kernel and one bias")
                kernel = torch.from_numpy(kernels[0]).float()
                out[f"conv{block}_{i}.weight"] = kernel.permute(3, 2, 0, 1).contiguous()
                out[f"conv{block}_{i}.bias"] = torch.from_numpy(biases[0]).float()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("h5", type=Path, help="vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5")
    p.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT)
    args = p.parse_args(argv)
    try:
        state = convert(args.h5)
        # what Vgg16Features.from_file does, before writing: every tensor, every shape
        widths = tuple(int(state[f"conv{b}_1.weight"].shape[0]) for b, _ in BLOCKS)
        Vgg16Features(widths).load_state_dict(state, strict=True)  # type: ignore[arg-type]
        args.output.parent.mkdir(parents=True, exist_ok=True)
        torch.save(state, args.output)
    except (ConvertError, OSError, RuntimeError, KeyError) as exc:
        print(f"convert_vgg: {exc}", file=sys.stderr)
        return 1
    size = sum(t.numel() for t in state.values()) * 4 / 1e6
    print(f"wrote {args.output} ({len(state)} tensors, {size:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
