"""Stand-ins for the outside world, for the tests and the workbench's demos and load tests:
a fake Telegram Bot API (:mod:`fakes.telegram`), a scriptable fake TorchServe
(:mod:`fakes.torchserve`), the real bot as a child process (:mod:`fakes.bot_process`),
conversation steps (:mod:`fakes.scenarios`) and generated test images and clips
(:mod:`fakes.images`, :mod:`fakes.clips`). Nothing here is imported by the product."""
