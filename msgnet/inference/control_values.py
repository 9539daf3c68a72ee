"""Values of the style controls, validated without torch (the handler's request parsing and
the CLI check them before anything heavy is loaded; :mod:`msgnet.inference.controls` does the
maths).

Every error is a :class:`ControlError` that names the field it is about, so each interface can
answer with its own name for it (``--strength`` on the command line, ``strength`` in REST).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

STRENGTH_METHODS = ("pixels", "gram")
DEFAULT_STRENGTH_METHOD = "pixels"
# brush name -> style size as a multiple of the default style size
# (384 / 256 / 128 px for weights whose encoder was trained at 256)
BRUSHES = {"small": 1.5, "medium": 1.0, "large": 0.5}
FALLBACK_STYLE_SIZE = 512  # the recipe encodes style images at 512 px (the authors' file too)
MAX_STYLES = 8


class ControlError(ValueError):
    """A control value a user can get wrong; ``field`` names it (CLI flag, REST field)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def check_strength(value: object, field: str = "strength") -> float:
    """``value`` as a float in 0..1, or :class:`ControlError` naming ``field``."""
    if isinstance(value, bool):
        raise ControlError(field, f"{field} must be a number from 0 to 1, got {value!r}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ControlError(field, f"{field} must be a number from 0 to 1, "
                                  f"got {str(value)[:40]!r}") from None
    if not (math.isfinite(number) and 0.0 <= number <= 1.0):
        raise ControlError(field, f"{field} must be from 0 to 1, got {str(value)[:40]}")
    return number


def parse_bool(value: object, field: str) -> bool:
    """true/false, 1/0, yes/no, on/off (any case) or a JSON bool; :class:`ControlError` else."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ControlError(field, f"{field} must be true or false, got {str(value)[:20]!r}")


def normalise_weights(weights: Sequence[float], field: str = "weight") -> list[float]:
    """Weights scaled to sum to one; negative, non-finite or all-zero weights are refused."""
    if not weights:
        raise ControlError(field, "at least one style is needed")
    if len(weights) > MAX_STYLES:
        raise ControlError(field, f"at most {MAX_STYLES} styles can be mixed, got {len(weights)}")
    values = []
    for w in weights:
        w = float(w)
        if not math.isfinite(w):
            raise ControlError(field, f"style {field}s must be finite numbers, got {w}")
        if w < 0:
            raise ControlError(field, f"style {field}s must not be negative, got {w:g}")
        values.append(w)
    total = sum(values)
    if total <= 0:
        raise ControlError(field, "style weights must not all be zero")
    return [w / total for w in values]


def parse_weighted(spec: str, field: str = "style") -> tuple[str, float]:
    """``"NAME[:WEIGHT]"`` -> (name, weight); weight 1 when absent.

    Only a suffix that reads as a number is a weight, so ``C:/photos/a.jpg`` stays a path.
    """
    text = spec.strip()
    name, sep, tail = text.rpartition(":")
    if sep:
        try:
            weight = float(tail)
        except ValueError:
            return text, 1.0
        if not name.strip():
            raise ControlError(field, f"{field} {spec!r} has a weight but no name")
        if not math.isfinite(weight) or weight < 0:
            raise ControlError(field, f"{field} weight must be a number >= 0, got {tail!r} "
                                      f"in {spec!r}")
        return name.strip(), weight
    if not text:
        raise ControlError(field, f"empty {field} name")
    return text, 1.0


def brush_style_size(brush: str, default_style_size: int, field: str = "brush") -> int:
    """Style size (px, a multiple of 4) for a brush name, relative to the default style size."""
    key = str(brush).strip().lower()
    if key not in BRUSHES:
        raise ControlError(field, f"{field} must be one of {', '.join(BRUSHES)}, "
                                  f"got {str(brush)[:20]!r}")
    return max(16, int(round(default_style_size * BRUSHES[key] / 4)) * 4)
