"""The style controls a user sets under a result, kept in their FSM data (so Redis too).

Pure functions, no Telegram I/O: which controls a user chose, and the REST fields they become
(docs/serving.md). FSM keys: ``strength`` (percent, 25/50/75/100), ``keep_colors`` (bool),
``brush`` (small/medium/large, for an uploaded style) and ``mix`` (a preset mixed 50/50 with the
current style; it belongs to that style, so choosing another style ends it). A job spec carries
its own copy, so a button under a result changes that result's controls.
"""

from __future__ import annotations

from typing import Any

STRENGTHS = (25, 50, 75, 100)  # percent, the buttons under a result
BRUSHES = ("small", "medium", "large")
MIX_WEIGHT = 0.5


def controls_of(data: dict[str, Any]) -> dict[str, Any]:
    """The user's controls with defaults, JSON-serializable (they travel in the job spec)."""
    strength = data.get("strength")
    brush = data.get("brush")
    return {"strength": int(strength) if strength in STRENGTHS else 100,
            "keep_colors": bool(data.get("keep_colors")),
            "brush": brush if brush in BRUSHES else None,
            "mix": data.get("mix") or None}


def request_fields(spec: dict[str, Any]) -> tuple[str | None, dict[str, str]]:
    """(``style_id`` to send, extra form fields) for a job spec's style and controls."""
    controls = spec.get("controls") or {}
    preset, mix = spec.get("preset"), controls.get("mix")
    fields: dict[str, str] = {}
    style_id = preset
    if mix and mix != preset:
        if preset:
            style_id = f"{preset}:{MIX_WEIGHT},{mix}:{MIX_WEIGHT}"
        else:  # an uploaded style and a preset
            style_id = f"{mix}:{MIX_WEIGHT}"
            fields["style_weight"] = str(MIX_WEIGHT)
    strength = controls.get("strength", 100)
    if strength != 100:
        fields["strength"] = f"{strength / 100:g}"
    if controls.get("keep_colors"):
        fields["keep_colors"] = "true"
    if controls.get("brush") and spec.get("style") and not spec.get("sheet"):
        fields["brush"] = controls["brush"]
    if spec.get("owner"):  # whose learned styles a style_id may name (bot/learnflow.py)
        fields["owner"] = spec["owner"]
    return style_id, fields


def describe(tr, spec: dict[str, Any]) -> str:
    """A short caption suffix naming the non-default controls, in the user's language."""
    controls = spec.get("controls") or {}
    parts = []
    if controls.get("mix") and controls["mix"] != spec.get("preset"):
        parts.append(tr("ctl_mixed", name=tr.title(controls["mix"])))
    if controls.get("strength", 100) != 100:
        parts.append(tr("ctl_strength", pct=controls["strength"]))
    if controls.get("keep_colors"):
        parts.append(tr("ctl_colors_kept"))
    if controls.get("brush") and spec.get("style"):
        parts.append(tr(f"brush_{controls['brush']}"))
    return " · ".join(parts)
