"""Helpers of the end-to-end bot scenarios (the real bot process, the fake Bot API, the real
TorchServe)."""

from __future__ import annotations

from fakes.scenarios import WAIT, use_preset

__all__ = ["WAIT", "more", "results", "use_preset"]


def results(user) -> list:
    return [s for s in user.sent() if s.method == "sendPhoto" and " px" in s.text]


async def more(user, result):
    """Press "More" under ``result``; returns it with the longer set of buttons."""
    await user.press(result, "ctl:more")
    return await user.expect_edit(result.message_id,
                                  lambda s: "ctl:less" in str(s.buttons), WAIT)
