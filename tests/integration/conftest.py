"""The integration tests' fixtures: the session's real TorchServe (``torchserve``, from the
shared fixture module :mod:`integration.servers`, which the end-to-end bot tests import too),
and its cold-start timings in the test summary."""

from __future__ import annotations

from .servers import TIMINGS, torchserve  # noqa: F401 (the session's server)


def pytest_terminal_summary(terminalreporter):
    if TIMINGS:
        terminalreporter.section("TorchServe timings")
        for name, seconds in TIMINGS.items():
            terminalreporter.write_line(f"{name}: {seconds:.1f} s")
