"""Fail-open that keeps its word: passthrough is the caller's documents in their original order, never a mix of
placeholder scores and real ones, and an input only one member cannot take moves the chain on.

Against real loopback emulators, a real (tiny) local cross-encoder and the CLI as a subprocess; sync and async.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from rerank_core import FallbackReranker, HTTPReranker, InvalidInputError, TorchCrossEncoder, UnsupportedInputError
from tests.cli.helpers import run
from tests.support.emulator import Fault
from tests.support.fixtures import StartEmulator

MODES = ["sync", "async"]
# Batches of two: [0, 1] is scored (two logits near -4.6), [2, 3] fails (the best documents), [4] follows.
DOCS = ["bread and water", "berlin", "paris capital", "paris is the capital", "the tower"]
LONG_QUERY = " ".join(["capital"] * 64)  # far past a max_length of 16 tokens


def call(mode: str, reranker: Any, query: str, documents: list[str], **kwargs: Any) -> Any:
    if mode == "sync":
        return reranker.rerank(query, documents, **kwargs)
    return asyncio.run(reranker.arerank(query, documents, **kwargs))


def test_cli_batches_with_one_failing_are_all_in_original_order(start_emulator: StartEmulator, tmp_path: Path) -> None:
    nim = start_emulator("nvidia")  # answers in logits: real scores are negative, the placeholder is 0.0
    config = tmp_path / "rerank.toml"
    config.write_text(
        f'provider = "nvidia"\nmodel = "m"\nbase_url = "{nim.base_url}"\nmax_retries = 0\non_failure = "passthrough"\n'
    )
    docs = tmp_path / "docs.txt"
    docs.write_text("\n".join(DOCS) + "\n")
    args = ["paris capital", str(docs), "--config", str(config), "--batch-size", "2"]

    nim.fail_next(Fault(), Fault(status=500))
    as_json = run(*args, "--format", "json")
    nim.fail_next(Fault(), Fault(status=500))
    table = run(*args)

    assert as_json.returncode == table.returncode == 0, as_json.stderr + table.stderr
    payload = json.loads(as_json.stdout)
    assert payload["passthrough"] is True
    assert [row["index"] for row in payload["results"]] == [0, 1, 2, 3, 4]
    assert {row["score"] for row in payload["results"]} == {0.0}  # no real score ranked against a placeholder
    assert [row["text"] for row in payload["results"]] == DOCS
    assert "passthrough: reranking failed, so every document is in its original order" in table.stdout
    # Batch 3 is not sent once the answer is passthrough: its scores could not change it.
    assert nim.request_count == 4  # two runs, two requests each


def test_cli_passthrough_with_top_n_keeps_the_first_documents(start_emulator: StartEmulator, tmp_path: Path) -> None:
    nim = start_emulator("nvidia")
    nim.fail_next(Fault(), Fault(), Fault(status=503))
    config = tmp_path / "rerank.toml"
    config.write_text(
        f'provider = "nvidia"\nmodel = "m"\nbase_url = "{nim.base_url}"\nmax_retries = 0\non_failure = "passthrough"\n'
    )
    docs = tmp_path / "docs.txt"
    docs.write_text("\n".join(DOCS) + "\n")
    done = run(
        "paris capital", str(docs), "--config", str(config), "--batch-size", "2", "--top-n", "3", "--format", "json"
    )
    assert done.returncode == 0, done.stderr
    payload = json.loads(done.stdout)
    assert payload["passthrough"] is True
    assert [row["index"] for row in payload["results"]] == [0, 1, 2]
    assert {row["score"] for row in payload["results"]} == {0.0}


@pytest.fixture
def short_local(tiny_cross_encoder: str) -> TorchCrossEncoder:
    return TorchCrossEncoder(tiny_cross_encoder, max_length=16, device="cpu")


@pytest.mark.parametrize("mode", MODES)
def test_a_query_too_long_for_the_local_member_moves_the_chain_on(
    start_emulator: StartEmulator, short_local: TorchCrossEncoder, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    hosted = start_emulator("generic")
    backup = HTTPReranker("generic", model="m", base_url=hosted.base_url, api_key="k", max_retries=0)
    chain = FallbackReranker([short_local, backup], failure_threshold=1)
    with pytest.raises(UnsupportedInputError, match="leaves no room"):
        call(mode, short_local, LONG_QUERY, DOCS)  # what the local member says on its own

    with caplog.at_level(logging.WARNING, logger="rerank_core"):
        response = call(mode, chain, LONG_QUERY, DOCS)

    assert response.provider == "generic"
    assert hosted.request_count == 1
    assert sorted(result.index for result in response.results) == list(range(len(DOCS)))
    assert any("cannot take this input" in record.getMessage() for record in caplog.records)
    # The local member is not down: its breaker did not trip, so the next ordinary query is its own.
    assert call(mode, chain, "paris capital", DOCS).provider == "local"
    assert hosted.request_count == 1


@pytest.mark.parametrize("mode", MODES)
def test_input_no_member_can_take_is_raised_even_with_passthrough(
    short_local: TorchCrossEncoder, tiny_cross_encoder: str, mode: str
) -> None:
    other = TorchCrossEncoder(tiny_cross_encoder, max_length=12, device="cpu")
    chain = FallbackReranker([short_local, other], on_failure="passthrough")
    with pytest.raises(UnsupportedInputError, match="every reranker in the fallback chain") as caught:
        call(mode, chain, LONG_QUERY, DOCS)
    assert caught.value.hint is not None
    assert "Shorten the query" in caught.value.hint
    with pytest.raises(InvalidInputError, match="query is empty or blank"):  # a caller error stops it at once
        call(mode, chain, "\u200b", DOCS)
