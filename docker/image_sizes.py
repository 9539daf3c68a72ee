#!/usr/bin/env python3
"""Estimate the Python part of each image from an installed environment, without Docker.

No image can be built where there is no Docker engine, so the size of what each image's
``pip install`` adds is estimated from this interpreter's site-packages: the files listed in
the RECORD of every distribution that the image's pyproject extras pull in (requirements
followed recursively), summed. The base image and the JDK are not Python packages; their
sizes are constants below, with their sources, and docs/deployment.md shows the sum.

    .venv/bin/python docker/image_sizes.py            # table
    .venv/bin/python docker/image_sizes.py --json     # JSON
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MB = 1_000_000
# Constants (MB, unpacked): python:3.11-slim-bookworm as published on Docker Hub (~125-130 MB
# unpacked); openjdk-17-jre-headless Installed-Size in the Debian 12 index (188 MB) plus the
# shared libraries it pulls into a slim image (fonts, NSS, HarfBuzz: ~25 MB, estimated).
BASE_IMAGE_MB = 130
JRE_MB = 215
IMAGES = {"torchserve": ["model", "serve"], "bot": ["bot"]}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    return canonical(re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement).group(1))


def closure(names: list[str]) -> set[str]:
    """The distributions these requirements install, followed through their metadata
    (requirements behind an extra or an environment marker that is false are skipped)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen.add(name)
        for requirement in dist.requires or []:
            requirement_text, _, marker = requirement.partition(";")
            if "extra" in marker:
                continue
            if marker.strip() and not _marker_true(marker):
                continue
            todo.append(requirement_name(requirement_text))
    return seen


def _marker_true(marker: str) -> bool:
    try:
        from packaging.markers import Marker
    except ImportError:  # pragma: no cover - packaging ships with pip's vendored copy only
        return True
    return Marker(marker).evaluate()


def installed_bytes(name: str) -> int:
    dist = metadata.distribution(name)
    total = 0
    for file in dist.files or []:
        path = Path(dist.locate_file(file))
        if path.is_file():
            total += path.stat().st_size
    return total


def estimate(pyproject: Path) -> dict[str, dict]:
    extras = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"][
        "optional-dependencies"]
    result = {}
    for image, names in IMAGES.items():
        requirements = [requirement_name(r) for extra in names for r in extras[extra]]
        dists = closure(requirements)
        sizes = {d: installed_bytes(d) / MB for d in sorted(dists)}
        python_mb = sum(sizes.values())
        jre = JRE_MB if image == "torchserve" else 0
        largest = dict(sorted(sizes.items(), key=lambda kv: -kv[1])[:6])
        result[image] = {"extras": names, "distributions": len(dists),
                         "python_packages_mb": round(python_mb),
                         "largest_mb": {k: round(v, 1) for k, v in largest.items()},
                         "base_image_mb": BASE_IMAGE_MB, "jre_mb": jre,
                         "estimated_total_mb": round(python_mb + BASE_IMAGE_MB + jre)}
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--json", action="store_true")
    p.add_argument("--pyproject", type=Path, default=ROOT / "pyproject.toml")
    args = p.parse_args(argv)
    result = estimate(args.pyproject)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{'image':<12}{'python pkgs':>12}{'base':>7}{'JRE':>6}{'total':>8}  largest packages")
    for image, r in result.items():
        largest = ", ".join(f"{k} {v:.0f}" for k, v in list(r["largest_mb"].items())[:4])
        print(f"{image:<12}{r['python_packages_mb']:>10} MB{r['base_image_mb']:>7}"
              f"{r['jre_mb']:>6}{r['estimated_total_mb']:>5} MB  {largest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
