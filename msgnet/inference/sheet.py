"""Contact sheet: the user's own photo in every preset, small and labelled, on one image.

People choose a style more easily on their own picture than on a generated landscape. All cells
have the same size, so :meth:`msgnet.inference.stylize.Stylizer.run` stylizes them in batches of
``max_batch`` per forward call (21 presets at 256 px: three calls), with the same controls as a
single result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

from msgnet.imageio import bgr_to_image
from msgnet.inference.controls import DEFAULT_CONTROLS, Controls

DEFAULT_CELL = 256       # longest side of each stylized cell
MIN_CELL, MAX_CELL = 64, 512  # 21 cells of 512 px already make a 2.6k x 2.3k sheet
LABEL_H = 22
GUTTER = 6
ORIGINAL_LABEL = "original"


class SheetError(ValueError):
    """A sheet that cannot be made (no presets, a cell size out of range)."""


@dataclass(frozen=True)
class SheetLayout:
    """Where each labelled cell goes: ``names`` in row-major order, ``columns`` per row."""

    names: tuple[str, ...]
    columns: int
    cell_w: int
    cell_h: int

    @property
    def rows(self) -> int:
        return math.ceil(len(self.names) / self.columns)

    @property
    def size(self) -> tuple[int, int]:
        return (self.columns * (self.cell_w + GUTTER) + GUTTER,
                self.rows * (self.cell_h + LABEL_H + GUTTER) + GUTTER)

    def origin(self, index: int) -> tuple[int, int]:
        row, col = divmod(index, self.columns)
        return (GUTTER + col * (self.cell_w + GUTTER),
                GUTTER + row * (self.cell_h + LABEL_H + GUTTER))


def check_cell_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or not MIN_CELL <= size <= MAX_CELL:
        raise SheetError(f"sheet cell size must be an integer from {MIN_CELL} to {MAX_CELL} "
                         f"pixels, got {size!r}")
    return size


def _font(size: int = 14) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the bitmap font
        return ImageFont.load_default()


def compose(images: list[Image.Image], names: list[str], columns: int | None = None
            ) -> Image.Image:
    """Lay out equally sized ``images`` with ``names`` under them on a white sheet."""
    if not images or len(images) != len(names):
        raise SheetError(f"{len(images)} images for {len(names)} labels")
    columns = columns or max(1, math.ceil(math.sqrt(len(images))))
    layout = SheetLayout(tuple(names), columns, images[0].width, images[0].height)
    sheet = Image.new("RGB", layout.size, "white")
    draw = ImageDraw.Draw(sheet)
    font = _font()
    for i, (img, name) in enumerate(zip(images, names, strict=True)):
        x, y = layout.origin(i)
        sheet.paste(img, (x, y))
        label = name.replace("_", " ")
        while label and draw.textlength(label, font=font) > layout.cell_w:
            label = label[:-1]
        draw.text((x, y + layout.cell_h + 3), label, fill=(0, 0, 0), font=font)
    return sheet


def contact_sheet(stylizer, photo: Image.Image, size: int = DEFAULT_CELL,
                  presets: list[str] | None = None, controls: Controls | None = None,
                  include_original: bool = True, columns: int | None = None) -> Image.Image:
    """``photo`` in every preset of ``stylizer`` (or in ``presets``), labelled; the first cell
    is the photo itself so each style can be compared with it."""
    size = check_cell_size(size)
    names = stylizer.preset_names() if presets is None else list(presets)
    if not names:
        raise SheetError("these weights ship no presets, so there is no sheet to make")
    targets = [stylizer.preset_target(name) for name in names]  # unknown names fail first
    content = stylizer.prepare_content(photo, min(size, stylizer.max_size))
    outputs = stylizer.run([content] * len(names), targets,
                           [controls or DEFAULT_CONTROLS] * len(names))
    images = [bgr_to_image(out) for out in outputs]
    if include_original:
        images.insert(0, bgr_to_image(content))
        names = [ORIGINAL_LABEL, *names]
    return compose(images, names, columns)


def sheet_names(stylizer, include_original: bool = True) -> list[str]:
    """Cell labels in order, for clients that map a tap on the sheet back to a preset."""
    names = stylizer.preset_names()
    return [ORIGINAL_LABEL, *names] if include_original else names
