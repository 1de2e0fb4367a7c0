"""Every relative link in docs/ points at a file that exists and, when it names a section, at a real heading."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = sorted(DOCS.glob("*.md"))
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation other than - and _ dropped, spaces to -."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def prose(markdown: str) -> str:
    """The page without its fenced code blocks (links there are examples, not navigation)."""
    return re.sub(r"^```.*?^```", "", markdown, flags=re.DOTALL | re.MULTILINE)


def anchors(page: Path) -> set[str]:
    headings = re.findall(r"^#{1,6} (.+)$", prose(page.read_text(encoding="utf-8")), flags=re.MULTILINE)
    return {github_slug(heading) for heading in headings}


def relative_links(page: Path) -> list[str]:
    links = LINK.findall(prose(page.read_text(encoding="utf-8")))
    return [link for link in links if not re.match(r"[a-z]+:", link)]


def test_slugs_follow_githubs_rule():
    assert github_slug("Where the weights come from (`--tee-weights`, `--tee-model-path`)") == (
        "where-the-weights-come-from---tee-weights---tee-model-path"
    )
    assert github_slug("Many benchmarks: Holm's correction") == "many-benchmarks-holms-correction"
    assert github_slug("pytest_tee_generate_model") == "pytest_tee_generate_model"


@pytest.mark.parametrize("page", PAGES, ids=[page.name for page in PAGES])
def test_relative_links_resolve(page: Path):
    broken = []
    for link in relative_links(page):
        target, _, anchor = link.partition("#")
        path = (page.parent / target).resolve() if target else page
        if not path.exists():
            broken.append(f"{link}: no file {path}")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            broken.append(f"{link}: no heading with anchor #{anchor} in {path.name}")
    assert not broken, "\n".join(broken)


def test_index_links_every_page():
    linked = {link.partition("#")[0] for link in relative_links(DOCS / "index.md")}
    missing = [page.name for page in PAGES if page.name != "index.md" and page.name not in linked]
    assert not missing, f"docs/index.md does not link {missing}"
