"""What every part measures with: sizes, pictures, weights, timing, the machine."""

from __future__ import annotations

import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from PIL import Image

from msgnet.imageio import image_to_bgr, resize_longest
from msgnet.model.checkpoint import LoadedWeights, save_weights
from msgnet.model.net import Net

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_WEIGHTS = ROOT / "weights" / "msgnet-21styles.pt"
SHARED = ROOT.parent / "shared" / "data"
PYTHON = sys.executable
BENCH_PRESET = "bench"
MAX_SIZE_UNDER_TEST = 4096


def parse_size(text: str) -> tuple[int, int]:
    """``512`` -> (512, 512); ``1024x768`` -> (h=768, w=1024) (width x height, as photos)."""
    if "x" in text:
        w, h = text.lower().split("x")
        return int(h), int(w)
    return int(text), int(text)


def size_label(hw: tuple[int, int]) -> str:
    h, w = hw
    return f"{w}²" if h == w else f"{w}x{h}"


def photos(limit: int = 3) -> list[tuple[str, Image.Image]]:
    """Real photos from ../shared when present, else the procedural demo scene."""
    found = sorted((SHARED / "content" / "coco128").glob("*.jpg"))[:limit]
    if found:
        return [(p.name, Image.open(p).convert("RGB")) for p in found]
    from msgnet.preview import demo_scene
    return [(f"demo_scene(seed={s})", demo_scene(1024, 768, seed=s)) for s in range(limit)]


def style_image() -> tuple[str, Image.Image]:
    path = SHARED / "styles" / "21styles" / "candy.jpg"
    if path.is_file():
        return path.name, Image.open(path).convert("RGB")
    from msgnet.preview import demo_scene
    return "demo_scene (mirrored)", demo_scene(512, 512, seed=3).transpose(0)


def photo_tensor(hw: tuple[int, int], index: int = 0) -> torch.Tensor:
    """A photo cropped to the aspect of ``hw`` and resized to it, BGR (1, 3, h, w)."""
    _, img = photos(index + 1)[index]
    h, w = hw
    scale = max(w / img.width, h / img.height)
    img = img.resize((max(w, round(img.width * scale)), max(h, round(img.height * scale))),
                     Image.Resampling.BICUBIC)
    left, top = (img.width - w) // 2, (img.height - h) // 2
    return image_to_bgr(img.crop((left, top, left + w, top + h)))


def prepare_weights(path: Path | None, workdir: Path) -> tuple[Path, str]:
    """The weights file to benchmark and a note on where it came from."""
    if path is not None and path.is_file():
        return path, f"weights file {path}"
    torch.manual_seed(0)
    net = Net(ngf=128).eval()
    with torch.no_grad():
        net.model[-1].conv2d.bias.uniform_(60.0, 190.0)
    _, style = style_image()
    with torch.inference_mode():
        gram = net.style_target(image_to_bgr(resize_longest(style, 512)))
    out = save_weights(workdir / "bench-random-ngf128.pt", net, {BENCH_PRESET: gram},
                       {"source": "workbench.bench: seeded random ngf=128"})
    return out, ("seeded random ngf=128 net (no weights/msgnet-21styles.pt): speed and memory "
                 "do not depend on weight values; PSNR on random weights is only indicative")


def target_for(loaded: LoadedWeights, net: Net) -> torch.Tensor:
    if loaded.presets:
        name = BENCH_PRESET if BENCH_PRESET in loaded.presets else sorted(loaded.presets)[0]
        return loaded.presets[name].float().reshape(1, net.channels, net.channels)
    _, style = style_image()
    with torch.inference_mode():
        return net.style_target(image_to_bgr(resize_longest(style, 512)))


# ---------------------------------------------------------------------------- measurements
def median_time(fn, runs: int, warmup: int) -> tuple[float, list[float]]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


