"""scripts/convert_vgg.py on a small Keras-layout .h5 made here (the real file is 58 MB and not
in the repository): the layout change is exact and the result loads as the loss network."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from msgnet.learning.vgg import Vgg16Features
from scripts import convert_vgg

h5py = pytest.importorskip("h5py", reason="h5py (dev extra) reads Keras' .h5 files")

WIDTHS = (4, 6, 8, 8)  # a narrow VGG16: the same layers, small tensors


def keras_file(path: Path, naming: str) -> dict[str, np.ndarray]:
    """A Keras save_weights-style file: a group per layer, datasets named by 'weight_names'
    (``release``: "block1_conv1_W_1:0"; ``keras2``: "block1_conv1/kernel:0")."""
    rng = np.random.default_rng(0)
    kernels: dict[str, np.ndarray] = {}
    cin = 3
    with h5py.File(path, "w") as f:
        for (block, convs), width in zip(convert_vgg.BLOCKS, WIDTHS, strict=True):
            for i in range(1, convs + 1):
                name = f"block{block}_conv{i}"
                kernel = rng.standard_normal((3, 3, cin, width)).astype(np.float32)
                bias = rng.standard_normal(width).astype(np.float32)
                group = f.create_group(name)
                if naming == "release":
                    names = [f"{name}_W_1:0", f"{name}_b_1:0"]
                else:
                    names = [f"{name}/kernel:0", f"{name}/bias:0"]
                group[names[0]], group[names[1]] = kernel, bias
                group.attrs["weight_names"] = [n.encode() for n in names]
                kernels[name] = kernel
                cin = width
        f.create_group("block5_conv1")  # past conv4_3: ignored
    return kernels


@pytest.mark.parametrize("naming", ["release", "keras2"])
def test_converts_keras_layout_to_the_loss_network(tmp_path: Path, naming: str) -> None:
    kernels = keras_file(tmp_path / "vgg.h5", naming)
    out = tmp_path / "weights" / "vgg.pt"
    assert convert_vgg.main([str(tmp_path / "vgg.h5"), "-o", str(out)]) == 0
    net = Vgg16Features.from_file(out)
    assert net.widths == WIDTHS
    # conv1_1 as Keras computes it (a cross-correlation over (kh, kw, in, out) kernels, "same"
    # padding) equals the converted torch convolution
    x = torch.randn(1, 3, 9, 9)
    k = torch.from_numpy(kernels["block1_conv1"])
    xp = F.pad(x, (1, 1, 1, 1))
    ref = sum(torch.einsum("nchw,co->nohw", xp[:, :, dy:dy + 9, dx:dx + 9], k[dy, dx])
              for dy in range(3) for dx in range(3))
    got = F.conv2d(x, net.conv1_1.weight, padding=1)
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4)


def test_refuses_a_file_without_vgg_layers(tmp_path: Path, capsys) -> None:
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.create_group("dense_1")
    assert convert_vgg.main([str(tmp_path / "other.h5"), "-o", str(tmp_path / "x.pt")]) == 1
    assert "no layer block1_conv1" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()


def test_refuses_a_file_that_is_not_hdf5(tmp_path: Path, capsys) -> None:
    (tmp_path / "bad.h5").write_bytes(b"not hdf5")
    assert convert_vgg.main([str(tmp_path / "bad.h5"), "-o", str(tmp_path / "x.pt")]) == 1
    assert "not an HDF5 file" in capsys.readouterr().err
