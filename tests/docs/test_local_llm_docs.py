"""docs/local.md, LLM rerankers and instructions: the examples run as written, on a tiny Qwen3 reranker standing
in for the hub model and the custom folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "local.md").read_text()
SECTION = DOC[DOC.index("## LLM rerankers") : DOC.index("## Instructions: `instruction`")]
EXAMPLES = re.findall(r"```python\n(.*?)\n```", SECTION, re.S)


@pytest.fixture(scope="module")
def tiny_qwen3(tmp_path_factory: pytest.TempPathFactory) -> str:
    pytest.importorskip("torch")
    from tests.support.tiny_models import build_tiny_qwen3_reranker

    return build_tiny_qwen3_reranker(tmp_path_factory.mktemp("tiny-qwen3-docs"))


def test_the_section_has_both_examples() -> None:
    assert len(EXAMPLES) == 2
    assert "instruction=" in EXAMPLES[0]
    assert "prompt_template=" in EXAMPLES[1]


@pytest.mark.parametrize("position", [0, 1])
def test_examples_run(position: int, tiny_qwen3: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = EXAMPLES[position].replace("Qwen/Qwen3-Reranker-0.6B", tiny_qwen3)
    code = code.replace("/models/my-llm-reranker", tiny_qwen3)
    namespace: dict[str, object] = {}
    exec(compile(code, f"docs/local.md example {position}", "exec"), namespace)
    reranker = namespace["reranker"]
    response = reranker.rerank("capital of France", ["Paris is the capital.", "Berlin."])  # type: ignore[attr-defined]
    assert response.score_kind == "probability"
    assert len(response.results) == 2
    if position == 0:
        assert capsys.readouterr().out.split()[1] == "probability"
