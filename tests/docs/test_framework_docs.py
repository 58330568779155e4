"""The framework guides' examples, run as written, so they cannot rot.

Each guide's ```python blocks run in order in one namespace, with the `local` backend pointed at the tiny test
cross-encoder (`RERANK_LOCAL_MODEL`). A block after `<!-- docs-test: compile-only ... -->` needs a real API key
and is only compiled; a block after `<!-- docs-test: file=NAME -->` is written to NAME in the working directory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from llama_index.core.instrumentation import get_dispatcher  # type: ignore[attr-defined]

DOCS = Path(__file__).resolve().parents[2] / "docs"
FENCE = re.compile(r"(?:<!-- docs-test: (?P<directive>[^>]*?) -->\n)?```(?P<lang>\w+)\n(?P<code>.*?)\n```", re.S)


@dataclass
class Block:
    directive: str
    lang: str
    code: str
    line: int


def blocks(guide: str) -> list[Block]:
    text = (DOCS / guide).read_text()
    return [
        Block(match["directive"] or "", match["lang"], match["code"], text.count("\n", 0, match.start("code")) + 1)
        for match in FENCE.finditer(text)
    ]


def run_guide(guide: str, model_dir: str, workdir: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("RERANK_LOCAL_MODEL", model_dir)
    monkeypatch.chdir(workdir)
    namespace: dict[str, Any] = {"__name__": "__docs__"}
    ran = 0
    for block in blocks(guide):
        if block.directive.startswith("file="):
            (workdir / block.directive.removeprefix("file=").strip()).write_text(block.code + "\n")
            continue
        if block.lang != "python":
            continue
        # Pad so tracebacks point at the guide's own line numbers.
        code = compile("\n" * (block.line - 1) + block.code, str(DOCS / guide), "exec")
        if block.directive.startswith("compile-only"):
            continue
        exec(code, namespace)
        ran += 1
    assert ran >= 3, f"{guide}: only {ran} runnable examples found"
    return namespace


def descending(scores: list[float | None]) -> bool:
    values = [score if score is not None else float("nan") for score in scores]
    return values == sorted(values, reverse=True)


def test_langchain_guide(
    tiny_cross_encoder: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ns = run_guide("langchain.md", tiny_cross_encoder, tmp_path, monkeypatch)

    docs = ns["docs"]
    assert len(docs) == 2
    assert {doc.id for doc in docs} <= {"paris", "berlin", "seine", "lyon"}
    assert descending([doc.metadata["relevance_score"] for doc in docs])
    assert [doc.id for doc in ns["async_docs"]] == [doc.id for doc in docs]
    assert "Question: What is the capital of France?" in ns["prompt_value"].to_string()
    out = capsys.readouterr().out
    assert docs[0].page_content in out
    assert "[{'index': 0, 'relevance_score': " in out  # rerank(), shaped like CohereRerank's
    assert "local {'prompt_tokens': " in out  # the rerank_response event: provider, usage, request ids


def test_llamaindex_guide(
    tiny_cross_encoder: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ns = run_guide("llamaindex.md", tiny_cross_encoder, tmp_path, monkeypatch)
    root = get_dispatcher()
    root.event_handlers = [handler for handler in root.event_handlers if not isinstance(handler, ns["RerankUsage"])]

    sources = ns["response"].source_nodes
    assert len(sources) == 2
    assert descending([source.score for source in sources])
    assert len(ns["reranked"]) == 4
    assert all(item.node.metadata["retrieval_score"] == 0.5 for item in ns["reranked"])
    assert sources[0].node.get_content() in capsys.readouterr().out


def test_haystack_guide(
    tiny_cross_encoder: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ns = run_guide("haystack.md", tiny_cross_encoder, tmp_path, monkeypatch)

    ranked = ns["result"]["ranker"]["documents"]  # the YAML pipeline's run, the last one
    assert ns["result"]["ranker"]["meta"]["provider"] == "local"
    assert ns["ranker_pipeline"].get_component("ranker").batch_size == 16
    assert len(ranked) == 2
    assert descending([doc.score for doc in ranked])
    assert "haystack_integrations.components.rankers.rerank.ranker.RerankRanker" in ns["ranker_pipeline"].dumps()
    assert f"('{ranked[0].content}', {round(ranked[0].score, 3)})" in capsys.readouterr().out
