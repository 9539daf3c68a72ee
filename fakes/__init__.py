"""Stand-ins for the outside world, for the tests and the workbench's demos and load tests:
a fake Telegram Bot API (:mod:`fakes.telegram`), a scriptable fake TorchServe
(:mod:`fakes.torchserve`), the real bot as a child process (:mod:`fakes.bot_process`) and
generated test images (:mod:`fakes.images`). Nothing here is imported by the product."""
