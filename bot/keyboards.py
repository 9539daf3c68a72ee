"""Keyboards and callback-data factories (texts come from the translator passed in)."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup, ReplyKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder, ReplyKeyboardBuilder

from bot.controls import BRUSHES, STRENGTHS
from bot.texts import LANGUAGES, Translator

GALLERY_PAGE = 9  # preset names shown under the preview, 3 per row


class _Extended(CallbackData, prefix="_"):
    """Callback data that gained trailing fields: a button sent before they existed (still
    under messages in users' chats) parses with their defaults instead of matching nothing,
    so it acts on the current images as it used to."""

    @classmethod
    def unpack(cls, value: str) -> CallbackData:
        missing = len(cls.model_fields) + 1 - len(value.split(cls.__separator__))
        return super().unpack(value + cls.__separator__ * max(missing, 0))


class RoleCB(CallbackData, prefix="role"):
    """Which image an upload is: ``mode`` 'ask' answers a question about a pending upload,
    'swap' flips the role of the upload ``uid`` that was guessed."""

    role: str
    mode: str
    uid: str = ""


class PresetCB(_Extended, prefix="pre"):
    """The gallery: ``action`` "open" (a new gallery), "show" (page to ``index``) or "use".
    ``rid``: the result the gallery was opened under (its photo gets the style; empty: the
    current photo); ``mode`` "mix": "use" mixes the preset in instead of replacing the style."""

    action: str
    index: int
    name: str = ""
    rid: str = ""
    mode: str = ""


class SizeCB(_Extended, prefix="size"):
    size: int
    run: bool = False  # re-run at this size right away (a button under a result)
    rid: str = ""  # that result (empty: the current images)


class LangCB(CallbackData, prefix="lang"):
    lang: str


class JobCB(CallbackData, prefix="job"):
    action: str  # "cancel" (the running job) or "full" (result rid as a file)
    rid: str = ""


class ControlCB(_Extended, prefix="ctl"):
    """A style control under result ``rid``: ``action`` strength (value: percent), colors,
    brush (value: small/medium/large), mix (pick a preset to mix with), sheet (every style)."""

    action: str
    value: str = ""
    rid: str = ""


class LearnCB(CallbackData, prefix="lrn"):
    """Learned styles: ``learn`` the style picture of result ``rid``; ``list`` the user's
    styles ("My styles"); ``use`` / ``rename`` / ``delete`` / ``forget`` (delete, confirmed)
    the style ``name``."""

    action: str
    name: str = ""
    rid: str = ""


def main_keyboard(tr: Translator) -> ReplyKeyboardMarkup:
    """Four buttons: the rest is under a result, in /help or in the command menu. (The
    routers still answer the buttons of the older, longer keyboard.)"""
    kb = ReplyKeyboardBuilder()
    for key in ("kb_presets", "kb_my_styles", "kb_restart", "kb_help"):
        kb.button(text=tr(key))
    kb.adjust(2, 2)
    return kb.as_markup(resize_keyboard=True, is_persistent=True)


def cancel_keyboard(tr: Translator) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=tr("btn_cancel"), callback_data=JobCB(action="cancel"))
    return kb.as_markup()


def upload_keyboard(tr: Translator, role: str, uid: str) -> InlineKeyboardMarkup:
    """Under "got the photo/style": flip a guessed role (the gallery follows a photo)."""
    kb = InlineKeyboardBuilder()
    other = "style" if role == "content" else "content"
    kb.button(text=tr(f"btn_swap_to_{other}"),
              callback_data=RoleCB(role=other, mode="swap", uid=uid[:40]))
    return kb.as_markup()


def presets_shortcut(tr: Translator) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=tr("btn_presets"), callback_data=PresetCB(action="open", index=0))
    return kb.as_markup()


def ask_role_keyboard(tr: Translator) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=tr("btn_is_content"), callback_data=RoleCB(role="content", mode="ask"))
    kb.button(text=tr("btn_is_style"), callback_data=RoleCB(role="style", mode="ask"))
    kb.adjust(2)
    return kb.as_markup()


def use_preset_cb(index: int, name: str, rid: str = "", mode: str = "") -> PresetCB:
    """The "use" button's data: the name when it fits in Telegram's 64 bytes (so a reordered
    list still finds it), else the index only."""
    cb = PresetCB(action="use", index=index, name=name if ":" not in name else "", rid=rid,
                  mode=mode)
    try:
        cb.pack()  # aiogram refuses data over Telegram's limit
    except ValueError:
        return PresetCB(action="use", index=index, rid=rid, mode=mode)
    return cb


def gallery_keyboard(tr: Translator, names: list[str], index: int, rid: str = "",
                     mode: str = "") -> InlineKeyboardMarkup:
    """The gallery's buttons; ``rid`` and ``mode`` travel with every page (see PresetCB)."""
    total = len(names)
    kb = InlineKeyboardBuilder()
    name = names[index]
    kb.button(text=tr("btn_prev"), callback_data=PresetCB(
        action="show", index=(index - 1) % total, rid=rid, mode=mode))
    kb.button(text=tr("btn_mix_preset" if mode == "mix" else "btn_use_preset",
                      name=tr.title(name)),
              callback_data=use_preset_cb(index, name, rid, mode))
    kb.button(text=tr("btn_next"), callback_data=PresetCB(
        action="show", index=(index + 1) % total, rid=rid, mode=mode))
    page = index // GALLERY_PAGE
    first = page * GALLERY_PAGE
    shown = list(range(first, min(total, first + GALLERY_PAGE)))
    for i in shown:
        short = tr.title(names[i]).split(" — ")[0]  # three to a row: the artist is left out
        label = f"• {short} •" if i == index else short
        kb.button(text=label, callback_data=PresetCB(action="show", index=i, rid=rid,
                                                     mode=mode))
    kb.button(text=tr("btn_my_styles"), callback_data=LearnCB(action="list"))
    rows = [3] + [3] * ((len(shown) + 2) // 3) + [1]
    kb.adjust(*rows)
    return kb.as_markup()


def size_keyboard(sizes: list[int], current: int, run: bool = False) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for size in sizes:
        label = f"• {size} •" if size == current else str(size)
        kb.button(text=label, callback_data=SizeCB(size=size, run=run))
    kb.adjust(4)
    return kb.as_markup()


def language_keyboard() -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    for code, module in LANGUAGES.items():
        kb.button(text=module.LANGUAGE_NAME, callback_data=LangCB(lang=code))
    kb.adjust(2)
    return kb.as_markup()


def result_keyboard(tr: Translator, rid: str, sizes: list[int], current: int,
                    controls: dict | None = None, own_style: bool = False,
                    learn_seconds: int | None = None, more: bool = False
                    ) -> InlineKeyboardMarkup:
    """Under a result, every button about *that* result (``rid``), re-running it without a
    new upload. The first view keeps what most people want: another style, the strength
    (labelled, the current one marked), own colours, the full-quality file, "learn this
    style" for an uploaded style when the server can (``learn_seconds``: about how long),
    and "More". ``more``: the rest one tap further - other sizes, mix, every style, the
    brush of an uploaded style - and "Back"."""
    controls = controls or {}
    kb = InlineKeyboardBuilder()
    if more:
        others = [s for s in sizes if s != current][:4]
        for size in others:
            kb.button(text=tr("btn_size", size=size),
                      callback_data=SizeCB(size=size, run=True, rid=rid))
        kb.button(text=tr("btn_mix"), callback_data=ControlCB(action="mix", rid=rid))
        kb.button(text=tr("btn_sheet"), callback_data=ControlCB(action="sheet", rid=rid))
        rows = [*([len(others)] if others else []), 1, 1]
        if own_style:
            brush = controls.get("brush") or "medium"
            for name in BRUSHES:
                label = tr(f"brush_{name}")
                kb.button(text=f"• {label} •" if name == brush else label,
                          callback_data=ControlCB(action="brush", value=name, rid=rid))
            rows.append(len(BRUSHES))
        kb.button(text=tr("btn_less"), callback_data=ControlCB(action="less", rid=rid))
        kb.adjust(*rows, 1)
        return kb.as_markup()
    kb.button(text=tr("btn_another_style"),
              callback_data=PresetCB(action="open", index=0, rid=rid))
    strength = controls.get("strength", 100)
    for pct in STRENGTHS:
        label = tr("btn_strength", pct=pct)
        kb.button(text=f"• {label} •" if pct == strength else label,
                  callback_data=ControlCB(action="strength", value=str(pct), rid=rid))
    kept = controls.get("keep_colors")
    kb.button(text=tr("btn_colors_on" if kept else "btn_colors_off"),
              callback_data=ControlCB(action="colors", value="off" if kept else "on",
                                      rid=rid))
    kb.button(text=tr("btn_full"), callback_data=JobCB(action="full", rid=rid))
    rows = [1, 2, 2, 1, 1]
    if own_style and learn_seconds:
        kb.button(text=tr("btn_learn", seconds=learn_seconds),
                  callback_data=LearnCB(action="learn", rid=rid))
        rows.append(1)
    kb.button(text=tr("btn_more"), callback_data=ControlCB(action="more", rid=rid))
    kb.adjust(*rows, 1)
    return kb.as_markup()


def sheet_keyboard(tr: Translator, names: list[str], rid: str = "") -> InlineKeyboardMarkup:
    """Under a contact sheet: one button per preset, in the sheet's order, to use it on the
    photo of result ``rid`` (the one the sheet was asked under)."""
    kb = InlineKeyboardBuilder()
    for index, name in enumerate(names):
        kb.button(text=tr.title(name).split(" — ")[0],
                  callback_data=use_preset_cb(index, name, rid))
    kb.adjust(3)
    return kb.as_markup()


def _name_ok(name: str) -> bool:
    """A learned style's name fits in callback data (1-40 ASCII characters)."""
    return len(name.encode()) <= 40


def learned_done_keyboard(tr: Translator, name: str) -> InlineKeyboardMarkup:
    """Under "learned": apply the new style to the photo, or open "My styles"."""
    kb = InlineKeyboardBuilder()
    if _name_ok(name):
        kb.button(text=tr("btn_apply_learned"), callback_data=LearnCB(action="use", name=name))
    kb.button(text=tr("btn_my_styles"), callback_data=LearnCB(action="list"))
    kb.adjust(1)
    return kb.as_markup()


def my_styles_shortcut(tr: Translator) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=tr("btn_my_styles"), callback_data=LearnCB(action="list"))
    return kb.as_markup()


def my_styles_keyboard(tr: Translator, names: list[str] | tuple[str, ...]
                       ) -> InlineKeyboardMarkup:
    """"My styles": a row per style - use it, rename it, delete it - then the presets."""
    kb = InlineKeyboardBuilder()
    shown = [n for n in names if _name_ok(n)]
    for name in shown:
        kb.button(text=tr("btn_use_learned", name=name),
                  callback_data=LearnCB(action="use", name=name))
        kb.button(text=tr("btn_rename"), callback_data=LearnCB(action="rename", name=name))
        kb.button(text=tr("btn_delete"), callback_data=LearnCB(action="delete", name=name))
    kb.button(text=tr("btn_presets"), callback_data=PresetCB(action="open", index=0))
    kb.adjust(*([3] * len(shown)), 1)
    return kb.as_markup()


def confirm_delete_keyboard(tr: Translator, name: str) -> InlineKeyboardMarkup:
    kb = InlineKeyboardBuilder()
    kb.button(text=tr("btn_delete_yes"), callback_data=LearnCB(action="forget", name=name))
    kb.button(text=tr("btn_delete_no"), callback_data=LearnCB(action="list"))
    kb.adjust(2)
    return kb.as_markup()
