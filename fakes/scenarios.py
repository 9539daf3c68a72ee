"""Steps of a conversation with the real bot through :class:`fakes.telegram.FakeUser`, shared
by the end-to-end tests and the workbench's load test."""

from __future__ import annotations

from bot.texts import LANGUAGES, Translator

WAIT = 90.0  # generous: the machine is shared and TorchServe runs on 2 CPU cores


async def use_preset(user, name: str, gallery=None):
    """/presets (or the ``gallery`` already shown, e.g. the one "mix" opens), page to
    ``name``, press its "use" button; returns the gallery message."""
    if gallery is None:
        await user.send("/presets")
        gallery = await user.expect(lambda s: s.photo is not None, WAIT)

    def use_data(sent):
        return next((d for _, d in sent.buttons
                     if d.startswith("pre:use:") and d.split(":")[3] == name), None)

    if use_data(gallery) is None:  # its button in the row of names shows its title
        labels = {Translator(code).title(name).split(" — ")[0] for code in LANGUAGES}
        await user.press(gallery, next(t for t, _ in gallery.buttons if t in labels))
        gallery = await user.expect_edit(gallery.message_id,
                                         lambda s: use_data(s) is not None, WAIT)
    await user.press_data(gallery, use_data(gallery))
    return gallery
