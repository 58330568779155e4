"""Every code block of docs/*.md, README.md, CONTRIBUTING.md and packages/*/README.md, run as written.

Each page runs in its own process and temporary folder (`tests/support/doc_blocks.py`), with every hosted provider
answered by a loopback emulator, API keys set to a test value, and every local model name that is not a folder
served by the tiny cross-encoder built in this session (`tests/support/docs_site/sitecustomize.py`). `pip install`
lines are checked against the installed packages instead of run (`tests/support/doc_pip.py`). A block that cannot
run here says why in a `<!-- not-run: reason -->` comment.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support import doc_pip
from tests.support.doc_blocks import DIRECTIVES, ROOT, RUN_LANGUAGES, blocks, console_commands, console_files, pages
from tests.support.emulator import ProviderEmulator
from tests.support.tiny_models import build_tiny_cross_encoder, export_tiny_onnx

from rerank_core.dialects import DIALECTS

SITE = ROOT / "tests" / "support" / "docs_site"
TEST_KEY = "docs-test-key"

CHECKS: dict[str, str] = {
    "README.md": """
import os
assert os.path.isfile("minilm-onnx/onnx/model.onnx"), "the offline route exports the model to the folder it names"
""",
    "docs/configuration.md": """
from rerank_core import RerankerConfig
for name in ("app.toml", "rerank.toml", "rerank.yaml"):  # every file example is valid and wastes no setting
    config = RerankerConfig.load(name)
    config.check_used()
    assert config.provider in ("cohere", "together"), name
""",
    "docs/langchain.md": """
def descending(scores):
    return scores == sorted(scores, reverse=True)
assert len(docs) == 2
assert {doc.id for doc in docs} <= {"paris", "berlin", "seine", "lyon"}
assert descending([doc.metadata["relevance_score"] for doc in docs])
assert [doc.id for doc in async_docs] == [doc.id for doc in docs]
assert "Question: What is the capital of France?" in prompt_value.to_string()
""",
    "docs/llamaindex.md": """
sources = response.source_nodes
assert len(sources) == 2
assert [s.score for s in sources] == sorted([s.score for s in sources], reverse=True)
assert len(reranked) == 4
assert all(item.node.metadata["retrieval_score"] == 0.5 for item in reranked)
""",
    "docs/haystack.md": """
ranked = result["ranker"]["documents"]
assert result["ranker"]["meta"]["provider"] == "local"
assert ranker_pipeline.get_component("ranker").batch_size == 16
assert len(ranked) == 2
assert [d.score for d in ranked] == sorted([d.score for d in ranked], reverse=True)
assert "haystack_integrations.components.rankers.rerank.ranker.RerankRanker" in ranker_pipeline.dumps()
""",
}
"""Assertions run in a page's namespace after its last block: the examples did what the page says."""
EXPECTED_OUTPUT: dict[str, list[str]] = {
    # The first command ranks with the default model; the offline route with the folder it exported.
    "README.md": [
        r"^pip \(docs test\): packages/rerank-core\[onnx\] is installed$",  # the first command, from a checkout
        r"^\s*3\s+\d\.\d+\s+\d+\s",
        r"^-- local:\./minilm-onnx, 8 documents$",
    ],
    "docs/evaluation.md": [r"^bm25 ", r"^local:", r"^fallback "],
    "docs/langchain.md": [r"\[\{'index': 0, 'relevance_score': ", r"local \{'prompt_tokens': "],
    "docs/cli.md": [r"^\s*3\s+\d\.\d+\s+\d+\s", r'^  "provider": "cohere",$'],
}
"""Patterns each page's output must contain (multiline regexes)."""


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The tiny cross-encoder with its fp32 and int8 ONNX export in the same folder: both engines load it."""
    folder = tmp_path_factory.mktemp("docs-model")
    build_tiny_cross_encoder(folder)
    return export_tiny_onnx(str(folder), folder, int8=True)


@pytest.fixture(scope="session")
def tiny_llm(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny Qwen3 reranker (causal LM), for the pages' LLM reranker examples."""
    from tests.support.tiny_models import build_tiny_qwen3_reranker

    return build_tiny_qwen3_reranker(tmp_path_factory.mktemp("docs-llm"))


@pytest.fixture(scope="session")
def routes() -> Iterator[dict[str, str]]:
    """One emulator per provider; any key is accepted (examples pass their own, e.g. `api_key="KEY"`)."""
    emulators = {name: ProviderEmulator(name).start() for name in DIALECTS}
    yield {name: emulator.base_url for name, emulator in emulators.items()}
    for emulator in emulators.values():
        emulator.stop()


@pytest.fixture(scope="session")
def page_environment(tiny_model: str, tiny_llm: str, routes: dict[str, str]) -> dict[str, str]:
    environ = {key: value for key, value in os.environ.items() if not key.startswith(("RERANK_", "DOC_"))}
    for dialect in DIALECTS.values():
        if dialect.api_key_env:
            environ[dialect.api_key_env] = TEST_KEY
    environ["MY_COHERE_KEY"] = TEST_KEY  # the framework guides' example of a key under a name of your own
    python_path = [str(SITE), str(ROOT), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    environ.update(
        PATH=os.pathsep.join([str(SITE / "bin"), str(Path(sys.executable).parent), environ.get("PATH", "")]),
        PYTHONPATH=os.pathsep.join(python_path),
        DOC_ROUTES=json.dumps(routes),
        DOC_TINY_MODEL=tiny_model,
        DOC_TINY_LLM=tiny_llm,
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        HAYSTACK_TELEMETRY_ENABLED="False",
        TOKENIZERS_PARALLELISM="false",
    )
    return environ


def test_every_page_with_code_is_run() -> None:
    found = pages()
    assert {"README.md", "CONTRIBUTING.md", "docs/local.md", "docs/client.md", "packages/rerank-core/README.md"} <= set(
        found
    )
    assert sum(1 for page in found for block in blocks(page) if block.lang in RUN_LANGUAGES) >= 60


@pytest.mark.parametrize("page", pages())
def test_every_block_that_is_not_run_says_why(page: str) -> None:
    for block in blocks(page):
        assert block.directive in ("", *DIRECTIVES), f"{block.label}: unknown directive {block.directive!r}"
        if block.directive == "not-run":
            assert len(block.argument) >= 10, f"{block.label}: a not-run block needs a reason"
        if block.directive == "file":
            assert re.fullmatch(r"[\w.-]+", block.argument), f"{block.label}: file: needs a plain file name"
        if block.lang in RUN_LANGUAGES:
            continue
        assert block.directive in ("file", "not-run") or block.lang in ("text", "toml", "yaml", "json", ""), (
            f"{block.label}: a {block.lang!r} block is neither run nor data"
        )


@pytest.mark.parametrize("page", [page for page in pages() if any(b.lang in RUN_LANGUAGES for b in blocks(page))])
@pytest.mark.slow
def test_the_page_runs_as_written(page: str, page_environment: dict[str, str], tmp_path: Path) -> None:
    for shared in ("examples", "packages"):  # what a page's relative paths name in a checkout
        (tmp_path / shared).symlink_to(ROOT / shared, target_is_directory=True)
    environ = {**page_environment, "DOC_CHECKS": CHECKS.get(page, "")}

    done = subprocess.run(
        [sys.executable, "-m", "tests.support.doc_blocks", page],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    report = f"stdout:\n{done.stdout[-4000:]}\nstderr:\n{done.stderr[-6000:]}"
    assert done.returncode == 0, report
    assert "Traceback" not in done.stderr, report
    for pattern in EXPECTED_OUTPUT.get(page, []):
        assert re.search(pattern, done.stdout, re.M), f"{pattern!r} not in the output\n{report}"


def test_a_console_transcript_runs_its_commands_and_knows_which_may_fail() -> None:
    transcript = """$ cat queries.jsonl
"capital of france"
$ rerank --queries queries.jsonl \\
    examples/docs.jsonl > run.jsonl
$ rerank "q" bad.jsonl
rerank: error: bad.jsonl:2: not valid JSON
$ rerank "q" missing.jsonl
$ echo $?
2"""
    assert console_files(transcript) == {"queries.jsonl": '"capital of france"\n'}
    assert console_commands(transcript) == [
        ("cat queries.jsonl", False),
        ("rerank --queries queries.jsonl \\\n    examples/docs.jsonl > run.jsonl", False),
        ('rerank "q" bad.jsonl', True),
        ('rerank "q" missing.jsonl', True),
        ("echo $?", False),
    ]


@pytest.mark.parametrize(
    ("line", "code"),
    [
        (["install", "rerank-core[onnx]", "--index-url", "https://example.org/simple"], 0),
        (["install", "-e", str(ROOT / "packages" / "rerank-core") + "[export]"], 0),
        (["install", "rerank-core[no-such-extra]"], 1),
        (["install", "-e", str(ROOT / "packages" / "rerank-cor")], 1),
        (["install", "surely-not-an-installed-distribution"], 1),
        (["install", "--break-everything", "rerank-core"], 2),
        (["uninstall", "-y", "torch"], 2),
    ],
)
def test_the_pip_stand_in_refuses_what_pip_would_not_install(line: list[str], code: int) -> None:
    assert doc_pip.main(line) == code


def test_the_development_command_is_what_ci_runs() -> None:
    development = [block for block in blocks("README.md") if block.lang == "bash"][-1]
    assert "bash scripts/check.sh" in development.code
    assert "scripts/check.sh" in (ROOT / ".ci/run").read_text()
