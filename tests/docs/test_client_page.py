"""docs/client.md stays true: its examples compile and the retry rules it states are the ones the code applies."""

from __future__ import annotations

import ast
import re

from tests.support.doc_blocks import ROOT, blocks

from rerank_core.http.retry import NEVER_RETRY_STATUSES, RETRY_STATUSES, RetryPolicy

GUIDE = ROOT / "docs" / "client.md"
TEXT = GUIDE.read_text()


def statuses(sentence: str) -> set[int]:
    return {int(code) for code in re.findall(r"\b[1-5]\d\d\b", sentence)}


def test_examples_compile() -> None:
    examples = [block.code for block in blocks("docs/client.md") if block.lang == "python"]
    assert len(examples) >= 6
    for code in examples:
        # Top-level `await` appears in examples meant for async code.
        compile(code, str(GUIDE), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


def test_documented_retry_statuses_match_the_code() -> None:
    retried = re.search(r"HTTP ([\d, or]+) or any 5xx is retried", TEXT.replace("\n", " "))
    never = re.search(r"HTTP ([\d, and]+) are never retried", TEXT.replace("\n", " "))
    assert retried is not None
    assert never is not None
    assert statuses(retried.group(1)) == set(RETRY_STATUSES)
    assert statuses(never.group(1)) == set(NEVER_RETRY_STATUSES)


def test_documented_backoff_numbers_match_the_defaults() -> None:
    policy = RetryPolicy()
    flat = TEXT.replace("\n", " ")
    assert f"a random time up to {policy.backoff_base:g} s" in flat
    assert f"capped at {policy.backoff_cap:g} s" in flat
    assert f"if it is at most `max_retry_after` ({policy.max_retry_after:g} s by default)" in flat


def test_every_constructor_argument_is_in_the_table() -> None:
    import inspect

    from rerank_core import HTTPReranker

    for name in inspect.signature(HTTPReranker).parameters:
        assert f"| `{name}` |" in TEXT or f"`{name}` / " in TEXT or f"/ `{name}` |" in TEXT, name


def test_documented_defaults_of_the_new_limits_match_the_code() -> None:
    from rerank_core import limits
    from rerank_core.http import DEFAULT_MAX_CONNECTIONS

    assert f"| `max_connections` | `{DEFAULT_MAX_CONNECTIONS}` |" in TEXT
    assert f"| `max_retry_after` | `{limits.DEFAULT_MAX_RETRY_AFTER}` |" in TEXT
    assert f"| `max_response_bytes` | `{limits.DEFAULT_MAX_RESPONSE_BYTES}` " in TEXT
