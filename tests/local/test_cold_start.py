"""A purely local program imports only what its path needs: the cold-start property behind the benchmark's figure.

Timing is measured in `benchmarks/local_onnx.py`; here we assert the cause of a slow start, which holds on any CPU:
the modules a fresh process has imported by its first local ONNX score.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import rerank_core

# The HTTP stack, the cache's SQLite and the event loop are only for programs that use them.
NOT_NEEDED_LOCALLY = (
    "httpx",
    "httpcore",
    "asyncio",
    "sqlite3",
    "rerank_core.http",
    "rerank_core.cache",
    "rerank_core.chunking",
    "rerank_core.fallback",
    "rerank_core.dialects",
    "rerank_core.local.torch_engine",
    "torch",
    "transformers",
)

PROGRAM = """
import json, sys
from rerank_core import load_reranker
reranker = load_reranker("local:" + sys.argv[1], options={"engine": "onnx"})
response = reranker.rerank("what is the capital of france", ["Paris is the capital of France.", "Berlin."])
print(json.dumps({"scored": len(response.results), "modules": sorted(sys.modules)}))
"""


def imported_by_first_score(folder: str) -> tuple[int, set[str]]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM, folder], capture_output=True, text=True, env=env, check=True, timeout=120
    )
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    return answer["scored"], set(answer["modules"])


def test_first_local_onnx_score_imports_no_http_cache_or_torch(tiny_onnx: str) -> None:
    scored, modules = imported_by_first_score(tiny_onnx)
    assert scored == 2
    assert "onnxruntime" in modules  # the check would be empty if the engine never ran
    assert sorted(name for name in NOT_NEEDED_LOCALLY if name in modules) == []


def test_the_torch_engines_earlier_name_is_the_same_class() -> None:
    from rerank_core.local import LocalCrossEncoder, TorchCrossEncoder

    assert rerank_core.LocalCrossEncoder is rerank_core.TorchCrossEncoder is LocalCrossEncoder is TorchCrossEncoder


def test_every_public_name_resolves_lazily() -> None:
    for name in rerank_core.__all__:
        assert getattr(rerank_core, name) is not None
    assert set(dir(rerank_core)) >= set(rerank_core.__all__)
    assert rerank_core.__version__
    with pytest.raises(AttributeError, match="NoSuchName"):
        rerank_core.NoSuchName  # noqa: B018
