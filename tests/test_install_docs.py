"""What the README and docs tell an operator about installing and running, checked against the
code it describes (issue 41): the commands' paths, the stale notes, the test command, the
TorchServe maintenance notice, and the claim that the model does not depend on TorchServe."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

from msgnet.model import download

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DEPLOYMENT = ROOT / "docs" / "deployment.md"


def text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def anchors(path: Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings."""
    result = set()
    for heading in re.findall(r"^#{1,6} (.+)$", text(path), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        result.add(slug)
    return result


DOCS = [README, ROOT / "docs" / "serving.md", DEPLOYMENT, ROOT / "docs" / "data.md",
        ROOT / ".env.example", ROOT / "scripts" / "run.sh"]


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_weights_options_name_where_download_saves(path: Path) -> None:
    """``--weights`` with the authors' file names the path ``msgnet download`` writes."""
    saved = download.OFFICIAL_PATH.relative_to(ROOT).as_posix()
    for match in re.finditer(r"--weights\s+(\S*21styles\.model)", text(path)):
        assert match.group(1) == saved, f"{path.name}: --weights {match.group(1)}"


@pytest.mark.parametrize("path", [ROOT / ".env.example", ROOT / "docs" / "serving.md"],
                         ids=lambda p: p.name)
def test_no_note_waits_for_the_shipped_weights(path: Path) -> None:
    assert (ROOT / "weights" / "msgnet-21styles.pt").is_file()
    assert "until weights/msgnet-21styles.pt exists" not in text(path).lower()


def test_no_reference_to_a_missing_capacity_section() -> None:
    for path in [*ROOT.joinpath("deploy").rglob("*"), *ROOT.joinpath("docs").glob("*.md")]:
        if path.is_file():
            assert "CAPACITY-TODO" not in path.read_text(encoding="utf-8", errors="replace"), path
    manifest = text(ROOT / "deploy" / "k8s" / "torchserve.yaml")
    section = re.search(r'docs/deployment\.md \("([^"]+)"\)', manifest).group(1)
    assert re.search(rf"^## {re.escape(section)}$", text(DEPLOYMENT), re.M)


def test_readme_states_the_test_duration_and_the_quick_subset() -> None:
    readme = text(README)
    assert re.search(r"scripts/test\.sh .*~11-15 min on 2 cores", readme)
    assert 'scripts/test.sh -m "not integration"' in readme
    markers = tomllib.loads(text(ROOT / "pyproject.toml"))["tool"]["pytest"]["ini_options"][
        "markers"]
    assert any(m.startswith("integration:") for m in markers)


@pytest.mark.parametrize("path", [README, DEPLOYMENT], ids=lambda p: p.name)
def test_torchserve_maintenance_status_is_stated_with_sources(path: Path) -> None:
    body = text(path)
    assert "limited maintenance" in body.lower()
    if path == DEPLOYMENT:
        for source in ("github.com/pytorch/serve", "kserve/kserve/issues/4568",
                       "kserve/kserve/pull/5638"):
            assert source in body, source
        for alternative in ("FastAPI", "Ray Serve", "Triton", "KServe"):
            assert alternative in body, alternative


def test_in_repo_links_to_the_new_sections_resolve() -> None:
    """The README's and the deployment guide's links to sections of the deployment guide."""
    for path in (README, DEPLOYMENT):
        for target, anchor in re.findall(r"\]\(((?:docs/deployment\.md)?)#([a-z0-9-]+)\)",
                                         text(path)):
            page = DEPLOYMENT if target or path == DEPLOYMENT else README
            assert anchor in anchors(page), f"{path.name}: #{anchor} not in {page.name}"


def test_data_sources_are_documented() -> None:
    data = text(ROOT / "docs" / "data.md")
    for source in ("zhanghang1989/PyTorch-Multi-Style-Transfer", "BSDS500", "cocodataset.org",
                   "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", "--exclude-prefix val_",
                   "python -m scripts.convert_vgg"):
        assert source in data, source
    assert "docs/data.md" in text(README)


def imports_of(path: Path) -> set[str]:
    """Top-level module names a Python file imports (anywhere in the file)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_the_model_does_not_depend_on_torchserve() -> None:
    """docs/deployment.md: msgnet/ imports nothing from TorchServe (``ts``), nor does the
    request contract (parsing, errors), so another server can host them."""
    for path in sorted((ROOT / "msgnet").glob("*.py")):
        assert "ts" not in imports_of(path), path
    for name in ("parsing.py", "errors.py"):
        assert "ts" not in imports_of(ROOT / "handler" / name), name
