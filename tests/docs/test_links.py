"""Links between the documentation pages lead somewhere: the file exists and, with a #fragment, so does the heading."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from tests.support.doc_blocks import ROOT, pages

LINK = re.compile(r"\]\((?P<target>[^)\s]*?)(?:#(?P<fragment>[^)\s]+))?\)")
HEADING = re.compile(r"^#{1,6} (?P<title>.+)$", re.M)
FENCED = re.compile(r"^```.*?^```", re.M | re.S)


def slug(title: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = FENCED.sub("", page.read_text(encoding="utf-8"))
    return {slug(match["title"]) for match in HEADING.finditer(text)}


@pytest.mark.parametrize("page", pages())
def test_every_local_link_resolves(page: str) -> None:
    source = ROOT / page
    text = FENCED.sub("", source.read_text(encoding="utf-8"))
    broken = []
    for match in LINK.finditer(text):
        target, fragment = match["target"], match["fragment"]
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path = (source.parent / target).resolve() if target else source
        if not path.exists() or (fragment is not None and path.suffix == ".md" and fragment not in anchors(path)):
            broken.append(match[0])
    assert broken == []


def test_the_slug_is_githubs() -> None:
    assert slug("The fused ONNX export, and threads under a controlled load") == (
        "the-fused-onnx-export-and-threads-under-a-controlled-load"
    )
    assert slug("Local cross-encoder speed (rerank-core `local`)") == "local-cross-encoder-speed-rerank-core-local"
