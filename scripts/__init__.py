"""The project's command-line tools, run from the repository root as ``python -m scripts.NAME``
(a package, so they import each other without touching ``sys.path``)."""
