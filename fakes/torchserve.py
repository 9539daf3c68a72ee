"""A small aiohttp stand-in for the MSG-Net TorchServe API, for the bot's unit and component
tests only (the end-to-end tests use a real TorchServe).

It follows the REST contract the bot relies on (multipart ``content`` + ``style`` and/or
``style_id`` (``NAME[:W],...`` mixes), ``size``, ``format``, the style controls ``strength``,
``keep_colors``, ``brush``, ``style_weight`` and ``action=sheet``;
``{"action": "presets"|"preview"}``; error JSON
``{"code", "message"}``; bearer-token auth) and can be scripted: fail the next requests with a
status, hold requests until released, or count what it was asked. The clip model
(``msgnet_clip``) streams ``{"done", "total"}`` lines, a chunk of 8 "frames" every
``Script.chunk_s``, then the clip's line, or the ``cancelled`` line once a request
``cancel=<token>`` (to either model, as form or JSON) has named the clip's ``cancel_token``;
with ``Script.clip_cut_after`` set, the connection is dropped after that many progress lines,
the chunked answer left unfinished, as TorchServe 0.12 does when the clip worker dies.

The learn model (``msgnet_learn``) takes ``action=learn`` (``style``, ``name``, ``owner``,
``steps``, ``cancel_token``): the store's 4xx checks first (not an image, a taken name,
``Script.max_per_owner`` styles), then NDJSON - a first line, ``Script.learn_steps`` progress
lines ``Script.learn_step_s`` apart, and a final line (or ``cancelled``). Learned styles are
kept per owner: the presets answer lists them under ``learned``, ``style_id`` with ``owner``
stylizes with them, ``action=rename`` / ``forget`` change them.
``Script.learn_fail`` answers the next learn requests with (status, body) instead.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
from dataclasses import dataclass, field

from aiohttp import web
from PIL import Image

from bot.imageinfo import sniff

try:  # decode iPhones' HEIC as the real server does (msgnet/imageio/decode.py registers it)
    from pillow_heif import register_heif_opener
    register_heif_opener()
except ImportError:  # pragma: no cover - the dev extra installs the model extra's pillow-heif
    pass

PRESETS = ("candy", "mosaic", "udnie", "rain", "wave", "starry", "scream", "feathers",
           "la_muse", "composition", "pencil", "mosaic_ducks")
SIZES = (256, 512, 768, 1024, 1536, 2048)
INVALID_KEY_BODY = {"code": 400, "type": "InvalidKeyException",
                    "message": "Token Authorization failed. Token either incorrect, expired, or "
                               "not provided correctly"}


@dataclass
class Script:
    """Scripted behaviour: ``fail`` is a list of (status, body) answered in order before
    normal service resumes; ``gate`` (when set) holds stylizations until it is set."""

    fail: list[tuple[int, dict]] = field(default_factory=list)
    gate: asyncio.Event | None = None
    pad: int = 0  # bytes appended to each result (decoders ignore them): a huge result
    clip_frames: int = 16   # frames of every clip (a big number: a clip that runs until stopped)
    chunk_s: float = 0.02   # per chunk of 8 frames
    clip_cut_after: int | None = None  # progress lines before the connection is dropped
    learn_fail: list[tuple[int, dict]] = field(default_factory=list)  # next learn answers
    learn_steps: int = 5
    learn_step_s: float = 0.01
    max_per_owner: int = 20


class FakeTorchServe:
    def __init__(self, key: str = "inference-key", model: str = "msgnet",
                 presets: tuple[str, ...] = PRESETS, previews: tuple[str, ...] = ("candy",),
                 clip_model: str = "msgnet_clip", learn_model: str = "msgnet_learn"):
        self.key = key
        self.model = model
        self.clip_model = clip_model
        self.learn_model = learn_model
        self.learned: dict[str, list[str]] = {}  # owner -> learned style names, in order
        self.learns: list[dict] = []             # each learn request's fields (but its style)
        self.clips: list[dict] = []        # each clip request's fields (but its content)
        self.clip_ends: list[str] = []     # how each clip stream ended: done|cancelled|gone|cut
        self.cancels: list[tuple[str, str]] = []  # (model, token) of each cancel request
        self.presets = presets
        self.previews = previews
        self.script = Script()
        self.requests: list[dict] = []
        self.refused: list[str] = []  # the keys of requests refused with InvalidKeyException
        self.stylized: list[dict] = []
        self.url = ""
        self._runner: web.AppRunner | None = None
        self.started = asyncio.Event()  # set when a stylization request arrives

    async def start(self) -> str:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/predictions/{model}", self._predict)
        app.router.add_post("/predictions/{model}/{version}", self._predict)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False,
                                     shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def close(self) -> None:
        if self.script.gate is not None:
            self.script.gate.set()
        if self._runner is not None:
            await self._runner.cleanup()

    @staticmethod
    def error(status: int, code: str, message: str, field: str | None = None) -> web.Response:
        body = {"code": code, "message": message}
        return web.json_response(body if field is None else {**body, "field": field},
                                 status=status)

    async def _predict(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.key}":
            # what TorchServe 0.12 answers a wrong or expired key (not 401)
            self.refused.append(request.headers.get("Authorization", "").removeprefix(
                "Bearer "))
            return web.json_response(INVALID_KEY_BODY, status=400)
        model = request.match_info["model"]
        if model not in (self.model, self.clip_model, self.learn_model):
            return web.json_response({"code": 404, "type": "ModelNotFoundException",
                                      "message": "Model not found"}, status=404)
        if request.content_type == "application/json":
            body = await request.json()
            if "cancel" in body:
                return self._cancel(model, body)
            self.requests.append({"action": body.get("action")})
            return self._action(body)
        form = await request.post()
        fields = {k: (v.file.read() if isinstance(v, web.FileField) else v)
                  for k, v in form.items()}
        if "cancel" in fields:
            return self._cancel(model, fields)
        self.requests.append({"fields": sorted(fields)})
        if model == self.clip_model:
            return await self._clip(request, fields)
        if model == self.learn_model:
            return await self._learn(request, fields)
        if self.script.fail:
            status, body = self.script.fail.pop(0)
            return web.json_response(body, status=status)
        self.started.set()
        if self.script.gate is not None:
            await self.script.gate.wait()
        return self._stylize(fields)

    def _cancel(self, model: str, fields: dict) -> web.Response:
        token = str(fields["cancel"])
        self.cancels.append((model, token))
        return web.json_response({"cancelled": token})

    async def _clip(self, request: web.Request, fields: dict) -> web.StreamResponse:
        """Progress lines until the clip's frames are done or its token is cancelled."""
        token = fields.get("cancel_token")
        self.clips.append({k: v for k, v in fields.items() if k != "content"})
        total, done, lines = self.script.clip_frames, 0, 0
        resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await resp.prepare(request)
        try:
            while done < total:
                if token and any(t == token for _, t in self.cancels):
                    final = {"status": 409, "code": "cancelled", "message":
                             f"cancelled by a cancel request: Stopped after {done} of {total} "
                             "frames."}
                    break
                if lines == self.script.clip_cut_after:
                    request.transport.abort()  # no last chunk: a truncated answer
                    self.clip_ends.append("cut")
                    return resp
                await asyncio.sleep(self.script.chunk_s)
                done = min(total, done + 8)
                await resp.write(json.dumps({"done": done, "total": total}).encode() + b"\n")
                lines += 1
            else:
                buf = io.BytesIO()
                Image.new("RGB", (32, 24), (30, 200, 90)).save(buf, "GIF")
                final = {"status": 200, "content_type": "image/gif",
                         "clip": f"frames={total};fps=10.000;size=32x24;audio=none",
                         "body": base64.b64encode(buf.getvalue()).decode()}
            await resp.write(json.dumps(final).encode() + b"\n")
            await resp.write_eof()
        except (ConnectionError, OSError):
            self.clip_ends.append("gone")
            return resp
        self.clip_ends.append("cancelled" if final["status"] == 409 else "done")
        return resp

    def _action(self, body: dict) -> web.Response:
        owner = str(body.get("owner") or "local")
        mine = self.learned.setdefault(owner, [])
        if body.get("action") == "presets":
            return web.json_response({
                "presets": [{"name": n, "preview": n in self.previews} for n in self.presets],
                "default_size": 512, "max_size": 2048, "min_size": 64, "sizes": list(SIZES),
                "learned": {"owner": owner, "styles": list(mine), "other_weights": [],
                            "max_per_owner": self.script.max_per_owner,
                            "learn_model": self.learn_model}})
        if body.get("action") in ("rename", "forget"):
            return self._store_action(body, mine)
        if body.get("action") == "preview":
            name = body.get("style_id")
            if name not in self.presets:
                return self.error(404, "unknown_preset", f"unknown preset {name!r}")
            if name not in self.previews:
                return self.error(404, "no_preview", f"preset {name!r} has no preview image")
            return web.Response(body=_jpeg(Image.new("RGB", (64, 64), (200, 30, 30))),
                                content_type="image/jpeg")
        return self.error(400, "bad_option", "unknown action")

    def _stylize(self, fields: dict) -> web.Response:
        if "content" not in fields:
            return self.error(422, "missing_field", "field 'content' (an image) is required",
                              "content")
        content = _decode(fields["content"], "content")
        if isinstance(content, web.Response):
            return content
        controls = {k: fields[k] for k in ("strength", "keep_colors", "brush", "style_weight")
                    if k in fields}
        if fields.get("action") == "sheet":
            self.stylized.append({"size": int(fields.get("size") or 256), "style": "sheet",
                                  "content": content.size, **controls})
            cells = len(self.presets) + 1
            return web.Response(body=_jpeg(Image.new("RGB", (64 * min(cells, 6),
                                                             80 * -(-cells // 6)), "white")),
                                content_type="image/jpeg")
        names = [part.split(":")[0].strip() for part in fields.get("style_id", "").split(",")
                 if part.strip()]
        known = (*self.presets, *self.learned.get(str(fields.get("owner") or "local"), []))
        unknown = [n for n in names if n not in known]
        if unknown:
            return self.error(404, "unknown_preset", f"unknown preset {unknown[0]!r}; "
                              f"available: {', '.join(self.presets)}")
        if "style" in fields:
            style = _decode(fields["style"], "style")
            if isinstance(style, web.Response):
                return style
            tint = style.resize((1, 1)).getpixel((0, 0))
            label = "image"
        elif names:
            tint, label = (30, 200, 90), fields["style_id"]
        else:
            return self.error(422, "missing_field", "a style is required")
        try:
            size = int(fields.get("size") or 512)
        except ValueError:
            return self.error(400, "bad_option", "size must be an integer")
        if not 64 <= size <= 2048:
            return self.error(400, "bad_option", f"size must be between 64 and 2048, got {size}")
        scale = size / max(content.size)
        out = content.resize((max(1, round(content.width * scale)),
                              max(1, round(content.height * scale))))
        out = Image.blend(out.convert("RGB"), Image.new("RGB", out.size, tint), 0.5)
        fmt = fields.get("format") or "jpeg"
        if "style" in fields and names:
            label = f"image+{fields['style_id']}"
        self.stylized.append({"size": size, "style": label, "content": content.size,
                              **controls})
        if fmt == "png":
            buf = io.BytesIO()
            out.save(buf, "PNG")
            return web.Response(body=buf.getvalue(), content_type="image/png")
        return web.Response(body=_jpeg(out) + bytes(self.script.pad),
                            content_type="image/jpeg")


    def _store_action(self, body: dict, mine: list[str]) -> web.Response:
        """``action=rename`` / ``forget`` of one of the owner's learned styles."""
        name = body.get("style_id")
        if name not in mine:
            return self.error(404, "unknown_preset", f"unknown preset {name!r}", "style_id")
        if body["action"] == "forget":
            mine.remove(name)
            return web.json_response({"forgotten": name, "owner": body.get("owner")})
        new = str(body.get("new_name") or "")
        if not LEARNED_NAME.match(new):
            return self.error(400, "bad_option", f"new_name: invalid style name {new!r}",
                              "new_name")
        if new in mine or new in self.presets:
            return self.error(409, "name_exists", f"new_name: {new!r} is taken", "new_name")
        mine[mine.index(name)] = new
        return web.json_response({"renamed": name, "to": new, "owner": body.get("owner")})

    async def _learn(self, request: web.Request, fields: dict) -> web.StreamResponse:
        """The learn model: checks, then progress lines and the final line."""
        self.learns.append({k: v for k, v in fields.items() if k != "style"})
        if self.script.learn_fail:
            status, body = self.script.learn_fail.pop(0)
            return web.json_response(body, status=status)
        style = _decode(fields.get("style") or b"", "style")
        if isinstance(style, web.Response):
            return style
        owner, name = str(fields.get("owner") or "local"), str(fields.get("name") or "")
        mine = self.learned.setdefault(owner, [])
        if name in mine or name in self.presets:
            return self.error(409, "name_exists", f"{name!r} exists already", "name")
        if len(mine) >= self.script.max_per_owner:
            return self.error(409, "store_full", f"owner {owner!r} has "
                              f"{self.script.max_per_owner} learned styles, the most allowed: "
                              "delete one first", "name")
        token = fields.get("cancel_token")
        steps = self.script.learn_steps
        resp = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await resp.prepare(request)
        lines = [{"step": 0, "steps": steps, "name": name, "owner": owner}]
        final = {"status": 200, "name": name, "owner": owner, "seconds": 1.5, "steps": steps,
                 "style_ratio": 0.2, "content_ratio": 0.4}
        try:
            await resp.write(json.dumps(lines[0]).encode() + b"\n")
            for step in range(1, steps + 1):
                await asyncio.sleep(self.script.learn_step_s)
                if token and any(t == token for _, t in self.cancels):
                    final = {"status": 409, "code": "cancelled", "message": "cancelled by a "
                             f"cancel request after {step} of {steps} steps; nothing was saved"}
                    break
                await resp.write(json.dumps({"step": step, "steps": steps,
                                             "style_ratio": 0.3}).encode() + b"\n")
            if final["status"] == 200:
                mine.append(name)
            await resp.write(json.dumps(final).encode() + b"\n")
            await resp.write_eof()
        except (ConnectionError, OSError):
            return resp
        return resp


LEARNED_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


def _jpeg(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _decode(data: bytes, name: str) -> Image.Image | web.Response:
    try:
        image = Image.open(io.BytesIO(data))
    except Exception:
        if sniff(data):  # an image format's signature, but unreadable
            return FakeTorchServe.error(400, "corrupt_image", f"{name}: truncated image", name)
        return FakeTorchServe.error(400, "not_an_image", f"{name}: not an image file", name)
    try:
        image.load()
    except Exception as exc:
        return FakeTorchServe.error(400, "corrupt_image", f"{name}: {exc}", name)
    return image.convert("RGB")


def key_file(path, key: str) -> None:
    """Write a TorchServe 0.12 style key_file.json."""
    path.write_text(json.dumps({"management": {"key": "m-key", "expiration time": "x"},
                                "inference": {"key": key, "expiration time": "x"},
                                "API": {"key": "api-key"}}))
