"""docs/providers.md and docs/self-hosting.md: the Python examples run, the tested commands are the ones CI runs."""

from __future__ import annotations

import pytest
from tests.support.doc_blocks import ROOT, blocks

KEYS = ["COHERE_API_KEY", "TOGETHER_API_KEY", "FIREWORKS_API_KEY", "NEBIUS_API_KEY", "RERANK_API_KEY"]
KEYS += ["VOYAGE_API_KEY", "PINECONE_API_KEY", "NVIDIA_API_KEY", "JINA_API_KEY", "MXBAI_API_KEY"]
KEYS += ["AZURE_AI_API_KEY", "DEEPINFRA_TOKEN", "SILICONFLOW_API_KEY", "OPENROUTER_API_KEY", "ZEROENTROPY_API_KEY"]
KEYS += ["DASHSCOPE_API_KEY", "CONTEXTUAL_API_KEY", "CLOUDFLARE_API_TOKEN", "WATSONX_APIKEY"]


def code_of(doc: str, lang: str) -> list[str]:
    return [block.code for block in blocks(f"docs/{doc}") if block.lang == lang]


@pytest.mark.parametrize("doc", ["providers.md", "self-hosting.md"])
def test_python_examples_build_their_rerankers(doc: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every example is executed up to the network: building a reranker validates provider, options and URL."""
    for key in KEYS:
        monkeypatch.setenv(key, "sk-doc-example")
    examples = code_of(doc, "python")
    assert examples
    namespace: dict[str, object] = {}
    exec("from rerank_core import Document, load_reranker", namespace)
    for number, code in enumerate(examples):
        runnable = "\n".join(line for line in code.splitlines() if ".rerank(" not in line)
        exec(compile(runnable, f"{doc} python block {number}", "exec"), namespace)


def test_the_infinity_install_documented_as_tested_is_what_check_sh_runs() -> None:
    check = (ROOT / "scripts" / "check.sh").read_text()
    installs = [line for block in code_of("self-hosting.md", "bash") for line in block.splitlines()]
    installs = [line.strip() for line in installs if line.startswith(".venv-infinity/bin/python -m pip install")]
    assert len(installs) == 3
    for line in installs:
        assert line in check
