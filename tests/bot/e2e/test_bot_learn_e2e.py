"""Learning a style through the bot, end to end (issue 39): the real bot process against the
fake Bot API and a real TorchServe serving ``msgnet`` and ``msgnet_learn`` (tiny weights, a
tiny random VGG, four generated photos; the server of tests/integration/test_learn.py). One
conversation: a photo, an own style picture, its result, "Learn this style", then the style
from "My styles" applied to the photo - stylized by the server under the user's owner."""

from __future__ import annotations

from pathlib import Path

import pytest
from bot_helpers import TOKEN, jpeg
from e2e_helpers import WAIT
from integration.helpers import encode, noise_image
from integration.servers import learn_server  # noqa: F401 (the module's server)

from fakes.bot_process import BotProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def is_result(sent) -> bool:
    return sent.method == "sendPhoto" and " px" in sent.text


@pytest.fixture
async def learn_bot(tg, learn_server, tmp_path):  # noqa: F811 (the imported fixture)
    bot = BotProcess({"BOT_TOKEN": TOKEN, "TELEGRAM_API_URL": tg.api_url,
                      "TS_URL": learn_server.endpoints.inference,
                      "TS_KEY_FILE": str(learn_server.key_file), "TS_RETRIES": "2",
                      "TS_RETRY_DELAY": "0.2", "LEARN_STEPS": "3", "LEARN_SECONDS": "20",
                      "STATUS_INTERVAL": "0.5", "POLLING_TIMEOUT": "5",
                      "SHUTDOWN_GRACE": "5", "LOG_LEVEL": "DEBUG"}, tmp_path / "bot.log")
    await bot.start_polling(tg, 60)
    yield bot
    await bot.stop_cleanly(TOKEN)


async def test_photo_own_style_learn_it_then_apply_it_from_my_styles(learn_bot, tg,
                                                                     learn_server):  # noqa: F811
    user = tg.user(701, "Lea", "en")
    await user.send_photo(jpeg(160, 120))
    await user.expect(lambda s: "Got the photo" in s.text, WAIT)
    await user.send_photo(encode(noise_image(96, 80, seed=11), "PNG"), caption="style")
    result = await user.expect(is_result, WAIT)
    assert result.text.startswith("Style: your image")
    assert "🧠 Learn this style (~20 s)" in [t for t, _ in result.buttons]

    await user.press(result, "Learn this style")
    await user.expect(lambda s: "Learning your style" in s.text, WAIT)
    done = await user.expect(lambda s: "is saved in ⭐ My styles" in s.text, WAIT)
    assert "“style-1”" in done.text
    store = Path(learn_server.env["MSGNET_STYLE_STORE"])  # in the server's store, under
    assert (store / "tg701" / "style-1.pt").is_file()     # this user's owner ...
    await user.send("/mystyles")
    mine = await user.expect(lambda s: s.text.startswith("⭐ My styles"), WAIT)
    assert "• style-1" in mine.text and "(1 of 20)" in mine.text
    await user.press(mine, "✅ style-1")
    learned = await user.expect(lambda s: is_result(s) and "style-1" in s.text, WAIT)
    assert learned.text.startswith("Style: style-1") and learned.photo[:3] == b"\xff\xd8\xff"
    assert not any("Learn this style" in t for t, _ in learned.buttons)

    # ... of this user only: another user has no styles, and cannot use this one
    other = tg.user(702, "Max", "en")
    await other.send("/mystyles")
    await other.expect(lambda s: "no learned styles yet" in s.text, WAIT)
