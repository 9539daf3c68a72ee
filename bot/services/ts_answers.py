"""What the bot's TorchServe client answers with: the server's presets and sizes, a styled
image, a styled clip."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Preset:
    name: str
    preview: bool = False


@dataclass(frozen=True)
class ServerInfo:
    """What the server offers: presets and output sizes (from ``{"action": "presets"}``)."""

    presets: tuple[Preset, ...]
    default_size: int = 512
    max_size: int = 2048
    sizes: tuple[int, ...] = (512,)
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def preset(self, name: str) -> Preset | None:
        return next((p for p in self.presets if p.name == name), None)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ServerInfo:
        presets = []
        for item in data.get("presets") or []:
            if isinstance(item, str):
                presets.append(Preset(item))
            elif isinstance(item, dict) and isinstance(item.get("name"), str):
                presets.append(Preset(item["name"], bool(item.get("preview"))))
        default_size = int(data.get("default_size") or 512)
        max_size = int(data.get("max_size") or max(default_size, 512))
        sizes = sorted({int(s) for s in data.get("sizes") or [] if 0 < int(s) <= max_size})
        if not sizes:
            sizes = [default_size]
        known = {"presets", "default_size", "max_size", "sizes"}
        return cls(tuple(presets), default_size, max_size, tuple(sizes),
                   {k: v for k, v in data.items() if k not in known})


@dataclass(frozen=True)
class StyledImage:
    data: bytes
    content_type: str

    @property
    def extension(self) -> str:
        return "png" if self.content_type == "image/png" else "jpg"


@dataclass(frozen=True)
class StyledClip:
    """A stylized clip: ``image/gif`` or ``video/mp4``, and the server's description
    (``frames=N;fps=F;seconds=S;size=WxH;audio=...``)."""

    data: bytes
    content_type: str
    about: str = ""

    @property
    def extension(self) -> str:
        return "gif" if self.content_type == "image/gif" else "mp4"

    def field(self, name: str) -> str:
        """One ``name=value`` of :attr:`about` ("" when absent)."""
        for part in self.about.split(";"):
            key, _, value = part.partition("=")
            if key == name:
                return value
        return ""
