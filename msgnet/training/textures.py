"""Style pictures made in code, for training the style predictor on more than 210 pictures.

The predictor (:mod:`msgnet.training.predictor`) learns a map from a picture to the decoder's
scale and shift; with 210 paintings it fits them and generalises less than it could (issue 43).
Two cheap sources of new pictures, both opt-in:

* :func:`texture` draws a procedural texture: stripes, dots, cells, brush strokes, pen hatching
  or coloured noise, each in a random palette on a random ground — the patterns, prints and
  drawings a painting set has few of;
* :func:`collage` joins two style pictures side by side: a Gram between the two, a style no
  single picture of the set has.

Everything is drawn from the ``random.Random`` given, so a run's pictures are the same on resume.
"""

from __future__ import annotations

import colorsys
import math
import random

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SIZE = 384
KINDS = ("stripes", "dots", "cells", "strokes", "hatching", "noise")
RGB = tuple[int, int, int]


def palette(rng: random.Random, n: int) -> list[RGB]:
    """``n`` colours around a random hue (analogous, complementary or spread)."""
    base, spread = rng.random(), rng.choice([0.08, 0.5, 1.0 / n])
    out = []
    for i in range(n):
        h = (base + i * spread + rng.uniform(-0.03, 0.03)) % 1
        r, g, b = colorsys.hsv_to_rgb(h, rng.uniform(0.3, 1.0), rng.uniform(0.25, 1.0))
        out.append((int(r * 255), int(g * 255), int(b * 255)))
    return out


def ground(rng: random.Random) -> RGB:
    """Paper (light, warm or cool), or a dark ground."""
    if rng.random() < 0.7:
        v = rng.randint(215, 250)
        return (v, v - rng.randint(0, 15), v - rng.randint(0, 30))
    v = rng.randint(10, 50)
    return (v, v, v + rng.randint(0, 20))


def _stripes(rng: random.Random, colors: list[RGB], bg: RGB) -> Image.Image:
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    a = rng.uniform(0, math.pi)
    t = x * math.cos(a) + y * math.sin(a)
    t = t + rng.choice([0, 6, 14]) * np.sin(2 * math.pi * (x * math.sin(a) - y * math.cos(a))
                                            / rng.uniform(40, 160))
    band = (t / rng.uniform(6, 40)).astype(np.int64) % len(colors)
    return Image.fromarray(np.asarray(colors, dtype=np.uint8)[band])


def _dots(rng: random.Random, colors: list[RGB], bg: RGB) -> Image.Image:
    img = Image.new("RGB", (SIZE, SIZE), bg)
    draw = ImageDraw.Draw(img)
    r0 = rng.uniform(3, 20)
    step = r0 * rng.uniform(2.2, 4)
    for gy in np.arange(0, SIZE + step, step):
        for gx in np.arange(0, SIZE + step, step):
            jx, jy = (rng.uniform(-step, step) * 0.3 for _ in range(2))
            r = r0 * rng.uniform(0.6, 1.2)
            draw.ellipse((gx + jx - r, gy + jy - r, gx + jx + r, gy + jy + r),
                         fill=rng.choice(colors))
    return img


def _cells(rng: random.Random, colors: list[RGB], bg: RGB) -> Image.Image:
    n = rng.randint(20, 200)
    pts = np.asarray([(rng.uniform(0, SIZE), rng.uniform(0, SIZE)) for _ in range(n)])
    y, x = np.mgrid[0:SIZE, 0:SIZE]
    d = (x[..., None] - pts[:, 0]) ** 2 + (y[..., None] - pts[:, 1]) ** 2
    part = np.partition(d, 1, axis=2)  # the two nearest points are all the grout needs
    owner = d.argmin(2)
    fill = np.asarray([rng.choice(colors) for _ in range(n)], dtype=np.uint8)[owner]
    if rng.random() < 0.6:  # grout between the tiles
        edge = np.sqrt(part[..., 1]) - np.sqrt(part[..., 0]) < rng.uniform(1.5, 4)
        fill[edge] = bg
    return Image.fromarray(fill)


def _strokes(rng: random.Random, colors: list[RGB], bg: RGB) -> Image.Image:
    img = Image.new("RGB", (SIZE, SIZE), bg)
    draw = ImageDraw.Draw(img)
    flow = rng.uniform(0, math.pi)
    width, length = rng.randint(3, 16), rng.uniform(15, 70)
    for _ in range(rng.randint(150, 900)):
        x, y = rng.uniform(-20, SIZE + 20), rng.uniform(-20, SIZE + 20)
        a = flow + rng.gauss(0, 0.35) + 0.6 * math.sin(y / 60)
        dx, dy = math.cos(a) * length / 2, math.sin(a) * length / 2
        draw.line((x - dx, y - dy, x + dx, y + dy), fill=rng.choice(colors), width=width)
    return img.filter(ImageFilter.GaussianBlur(rng.choice([0, 0.6, 1.2])))


def _hatching(rng: random.Random, colors: list[RGB], bg: RGB) -> Image.Image:
    img = Image.new("RGB", (SIZE, SIZE), bg)
    draw = ImageDraw.Draw(img)
    ink = rng.choice([(20, 20, 25), (60, 40, 30), colors[0]])
    for a in rng.sample([0.3, 1.2, 2.0, 2.7], rng.randint(1, 3)):
        gap = rng.uniform(4, 14)
        dx, dy = math.cos(a), math.sin(a)
        for k in np.arange(-SIZE, 2 * SIZE, gap):
            ox, oy = -dy * k + rng.gauss(0, 1.5), dx * k + rng.gauss(0, 1.5)
            start, stop = rng.uniform(-SIZE, 0.5 * SIZE), rng.uniform(0.5 * SIZE, 2 * SIZE)
            draw.line((ox + dx * start, oy + dy * start, ox + dx * stop, oy + dy * stop),
                      fill=ink, width=rng.choice([1, 1, 2]))
    return img


def _noise(rng: random.Random, colors: list[RGB], bg: RGB) -> Image.Image:
    gen = np.random.default_rng(rng.getrandbits(32))
    field = np.zeros((SIZE, SIZE), np.float32)
    for octave in range(rng.randint(2, 5)):
        cells = 2 ** (octave + 2)
        small = Image.fromarray(gen.random((cells, cells), np.float32) * 255).convert("L")
        field += np.asarray(small.resize((SIZE, SIZE), Image.Resampling.BICUBIC),
                            np.float32) / 2 ** octave
    field = (field - field.min()) / (np.ptp(field) + 1e-6)
    if rng.random() < 0.5:  # marble veins
        field = 0.5 + 0.5 * np.sin(field * rng.uniform(8, 30))
    stops = np.asarray([bg, *colors], np.float32)
    pos = field * (len(stops) - 1)
    lo = np.floor(pos).astype(np.int64).clip(0, len(stops) - 2)
    w = (pos - lo)[..., None]
    return Image.fromarray(((1 - w) * stops[lo] + w * stops[lo + 1]).astype(np.uint8))


_DRAW = {"stripes": _stripes, "dots": _dots, "cells": _cells, "strokes": _strokes,
         "hatching": _hatching, "noise": _noise}


def texture(rng: random.Random, kind: str | None = None) -> Image.Image:
    """A :data:`SIZE`-pixel square texture of ``kind`` (random when None)."""
    kind = kind or rng.choice(KINDS)
    return _DRAW[kind](rng, palette(rng, rng.randint(2, 5)), ground(rng))


def collage(a: Image.Image, b: Image.Image, rng: random.Random) -> Image.Image:
    """``a`` and ``b`` at one height, side by side, split at a random 30-70 % of the width."""
    h = SIZE
    a, b = (im.convert("RGB").resize((max(1, round(im.width * h / im.height)), h))
            for im in (a, b))
    w = min(a.width, b.width, 2 * h)
    cut = int(w * rng.uniform(0.3, 0.7))
    out = Image.new("RGB", (w, h))
    out.paste(a.crop((0, 0, cut, h)), (0, 0))
    out.paste(b.crop((b.width - (w - cut), 0, b.width, h)), (cut, 0))
    return out
