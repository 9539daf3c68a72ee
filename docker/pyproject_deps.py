#!/usr/bin/env python3
"""Print the requirements of pyproject.toml extras, one per line, for ``pip install -r``.

The images install dependencies from the same list as ``.venv`` (pyproject.toml), in a layer
that only changes when pyproject.toml does; the project itself is not installed (the bot
image copies ``bot/``, the TorchServe image gets ``msgnet``/``handler`` inside the .mar).

    python pyproject_deps.py bot                      # the bot image
    python pyproject_deps.py model serve --exclude torch
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path


def requirement_name(requirement: str) -> str:
    """The distribution name of a PEP 508 requirement, normalised (PEP 503)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if not match:
        raise ValueError(f"not a requirement: {requirement!r}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def extras_requirements(pyproject: Path, extras: list[str], exclude: list[str]) -> list[str]:
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    project = data["project"]
    available = project.get("optional-dependencies", {})
    skip = {requirement_name(name) for name in exclude}
    result: list[str] = []
    seen: set[str] = set()
    for extra in extras:
        if extra not in available:
            raise KeyError(f"no extra {extra!r} in {pyproject} (has: {', '.join(available)})")
        for requirement in [*project.get("dependencies", []), *available[extra]]:
            name = requirement_name(requirement)
            if name in skip or requirement in seen:
                continue
            seen.add(requirement)
            result.append(requirement)
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("extras", nargs="+")
    p.add_argument("--pyproject", type=Path, default=Path("pyproject.toml"))
    p.add_argument("--exclude", action="append", default=[],
                   help="leave out this distribution (e.g. torch, installed from its own index)")
    args = p.parse_args(argv)
    try:
        lines = extras_requirements(args.pyproject, args.extras, args.exclude)
    except (OSError, KeyError, ValueError, tomllib.TOMLDecodeError) as exc:
        print(f"pyproject_deps: {exc}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
