"""HTTPReranker end to end against a real loopback server: inputs, outputs, wire format, clients, lifecycle."""

from __future__ import annotations

import asyncio
import copy
import gc
import threading
import warnings
from datetime import UTC, datetime

import httpx
import pytest
from tests.support.emulator import ProviderEmulator, overlap_score
from tests.support.fixtures import StartEmulator
from tests.support.transport import API_KEY, MODES, Mode, call, make_reranker

from rerank_core import ConfigurationError, Document, HTTPReranker, InvalidInputError, load_reranker

QUERY = "apple pie recipe"


@pytest.mark.parametrize("mode", MODES)
async def test_ranks_strings_by_provider_score(emu: ProviderEmulator, mode: Mode) -> None:
    docs = ["car engine", "apple pie", "apple pie recipe book", "pie"]
    with make_reranker(emu) as reranker:
        response = await call(reranker, mode, QUERY, docs)

    expected = sorted(range(4), key=lambda i: (-overlap_score(QUERY, docs[i]), i))
    assert [r.index for r in response.results] == expected
    assert [r.relevance_score for r in response.results] == [overlap_score(QUERY, docs[i]) for i in expected]
    assert [r.document.text for r in response.results] == [docs[i] for i in expected]
    assert response.provider == "generic"
    assert response.model == "test-model"
    assert response.score_kind == "unknown"  # the generic platform documents no score range
    assert response.usage.total_tokens == sum(len(d.split()) for d in docs)
    assert response.request_ids == ["rerank_emulated"]
    assert response.dropped == []
    assert emu.request_count == 1


@pytest.mark.parametrize("mode", MODES)
async def test_documents_and_dicts_keep_ids_metadata_and_are_not_mutated(emu: ProviderEmulator, mode: Mode) -> None:
    doc = Document("apple pie", id="d-1", metadata={"source": "cookbook", "page": 7})
    mapping = {"text": "car engine", "id": 42, "metadata": {"tags": ["x"]}, "lang": "en"}
    docs: list[Document | dict[str, object] | str] = [doc, mapping, "apple"]
    before = copy.deepcopy(docs)

    with make_reranker(emu, options={"send_metadata": True}) as reranker:
        response = await call(reranker, mode, QUERY, docs)

    assert docs == before
    by_index = {r.index: r.document for r in response.results}
    assert by_index[0] is doc
    assert by_index[1] == Document("car engine", id=42, metadata={"tags": ["x"], "lang": "en"})
    assert by_index[1].id == 42  # ids keep their type
    assert by_index[2] == Document("apple")
    # With send_metadata, the wire carries id and metadata the generic platform's way; strings stay strings.
    sent = emu.requests[0].body["documents"]
    assert sent[0] == {"text": "apple pie", "id": "d-1", "metadata": {"source": "cookbook", "page": 7}}
    assert sent[1]["id"] == "42"  # the platform takes string ids; the caller gets its int back
    assert sent[2] == "apple"


async def test_request_wire_format(emu: ProviderEmulator) -> None:
    with make_reranker(emu, options={"truncate": "end", "user": "u-1"}, headers={"x-team": "search"}) as reranker:
        reranker.rerank(QUERY, ["a", "b", "c"], top_n=2)

    request = emu.requests[0]
    assert request.path == "/v1/rerank"
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("rerank-core/")
    assert request.headers["x-team"] == "search"
    assert request.body == {
        "model": "test-model",
        "query": QUERY,
        "documents": ["a", "b", "c"],
        "return_documents": False,
        "top_n": 2,
        "truncate": "end",
        "user": "u-1",
    }


@pytest.mark.parametrize("mode", MODES)
async def test_top_n_is_sent_and_the_rest_is_reported_dropped(emu: ProviderEmulator, mode: Mode) -> None:
    docs = ["apple pie recipe", "car", "apple", "pie recipe", "boat"]
    with make_reranker(emu) as reranker:
        response = await call(reranker, mode, QUERY, docs, top_n=2)

    assert emu.requests[0].body["top_n"] == 2
    assert [r.index for r in response.results] == [0, 3]
    assert sorted(d.index for d in response.dropped) == [1, 2, 4]
    assert {d.reason for d in response.dropped} == {"top_n"}


@pytest.mark.parametrize("mode", MODES)
async def test_top_n_larger_than_the_list_is_capped_on_the_wire(emu: ProviderEmulator, mode: Mode) -> None:
    with make_reranker(emu) as reranker:
        response = await call(reranker, mode, QUERY, ["apple", "pie"], top_n=10)
    assert emu.requests[0].body["top_n"] == 2
    assert len(response.results) == 2


@pytest.mark.parametrize("mode", MODES)
async def test_empty_list_sends_no_request(emu: ProviderEmulator, mode: Mode) -> None:
    with make_reranker(emu) as reranker:
        response = await call(reranker, mode, QUERY, [])
    assert response.results == []
    assert response.provider == "generic"
    assert emu.request_count == 0


async def test_sync_rerank_works_inside_a_running_event_loop(emu: ProviderEmulator) -> None:
    asyncio.get_running_loop()  # this test body runs inside the loop, as in Jupyter or an async web app
    with make_reranker(emu) as reranker:
        response = reranker.rerank(QUERY, ["apple pie", "car"])
    assert [r.index for r in response.results] == [0, 1]


async def test_arerank_is_native_async_on_the_event_loop_thread(emu: ProviderEmulator) -> None:
    threads: list[int] = []

    async def record_thread(request: httpx.Request) -> None:
        threads.append(threading.get_ident())

    async with httpx.AsyncClient(event_hooks={"request": [record_thread]}) as client:
        reranker = make_reranker(emu, async_http_client=client)
        await reranker.arerank(QUERY, ["apple", "pie"])
        await reranker.aclose()
        assert not client.is_closed, "a client passed in belongs to the caller"
    assert threads == [threading.get_ident()]


async def test_concurrent_arerank_calls_overlap(start_emulator: StartEmulator) -> None:
    emu = start_emulator("generic", latency=0.5)
    async with make_reranker(emu) as reranker:
        loop = asyncio.get_running_loop()
        started = loop.time()
        first, second = await asyncio.gather(
            reranker.arerank(QUERY, ["apple"]), reranker.arerank(QUERY, ["pie", "car"])
        )
        elapsed = loop.time() - started
    assert len(first.results) == 1
    assert len(second.results) == 2
    assert elapsed < 0.9, f"two 0.5 s calls took {elapsed:.2f} s: they did not run concurrently"
    assert emu.peak_in_flight == 2  # both requests were at the server at once


def test_caller_supplied_sync_client_is_used_and_left_open(emu: ProviderEmulator) -> None:
    seen: list[str] = []
    with httpx.Client(event_hooks={"request": [lambda request: seen.append(str(request.url))]}) as client:
        with make_reranker(emu, http_client=client) as reranker:
            reranker.rerank(QUERY, ["apple"])
        assert seen == [emu.url]
        assert not client.is_closed


def test_reranker_is_reusable_after_close(emu: ProviderEmulator) -> None:
    reranker = make_reranker(emu)
    reranker.rerank(QUERY, ["apple"])
    reranker.close()
    assert len(reranker.rerank(QUERY, ["apple", "pie"]).results) == 2
    reranker.close()
    assert emu.request_count == 2


def test_async_use_across_separate_event_loops(emu: ProviderEmulator) -> None:
    reranker = make_reranker(emu)

    async def once() -> int:
        response = await reranker.arerank(QUERY, ["car", "apple pie"])
        return response.results[0].index

    async def last() -> int:
        index = await once()
        await reranker.aclose()
        return index

    # Pooled connections belong to one loop; a second `asyncio.run` must get a working client of its own.
    assert asyncio.run(once()) == 1
    assert asyncio.run(last()) == 1
    assert emu.request_count == 2


def test_load_reranker_builds_an_http_reranker(emu: ProviderEmulator) -> None:
    reranker = load_reranker(
        {"provider": "generic", "model": "m", "base_url": emu.base_url, "api_key": API_KEY, "max_retries": 0}
    )
    with reranker:
        assert isinstance(reranker, HTTPReranker)
        assert reranker.max_retries == 0
        assert reranker.rerank(QUERY, ["apple"]).model == "m"


def test_base_url_may_be_the_full_endpoint(emu: ProviderEmulator) -> None:
    with HTTPReranker("generic", model="m", base_url=emu.url, api_key=API_KEY) as reranker:
        reranker.rerank(QUERY, ["apple"])
    assert emu.requests[0].path == "/v1/rerank"


def test_api_key_comes_from_the_provider_env_var(emu: ProviderEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RERANK_API_KEY", API_KEY)
    with HTTPReranker("generic", model="m", base_url=emu.base_url) as reranker:
        reranker.rerank(QUERY, ["apple"])
    assert emu.requests[0].headers["authorization"] == f"Bearer {API_KEY}"


def test_missing_api_key_names_the_env_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RERANK_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="RERANK_API_KEY") as caught:
        HTTPReranker("generic", model="m", base_url="http://127.0.0.1:9")
    assert caught.value.provider == "generic"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"base_url": None}, "base_url"),
        ({"base_url": "ftp://example.com"}, "http"),
        ({"base_url": "not a url"}, "base_url"),
        ({"timeout": 0}, "timeout"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"max_documents_per_request": 0}, "max_documents_per_request"),
        ({"options": {"top_k": 3}}, "top_k"),
        ({"normalize": "softmax"}, "normalize"),
    ],
)
def test_bad_settings_raise_configuration_error(kwargs: dict[str, object], message: str) -> None:
    settings: dict[str, object] = {"model": "m", "base_url": "http://127.0.0.1:9", "api_key": API_KEY, **kwargs}
    with pytest.raises(ConfigurationError, match=message):
        HTTPReranker("generic", **settings)  # type: ignore[arg-type]


def test_unknown_provider_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="unknown provider"):
        HTTPReranker("no-such-provider", base_url="http://127.0.0.1:9")


def collect_earlier_garbage() -> None:
    """Collect what earlier tests left behind, so their warnings are not blamed on this test."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def collected_resource_warnings() -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        gc.collect()
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


def test_sync_close_closes_the_async_pool_of_an_idle_loop(emu: ProviderEmulator) -> None:
    collect_earlier_garbage()
    loop = asyncio.new_event_loop()
    reranker = make_reranker(emu)
    loop.run_until_complete(reranker.arerank(QUERY, ["apple"]))
    reranker.close()
    loop.close()
    del reranker
    assert collected_resource_warnings() == []


async def test_sync_close_inside_the_running_loop_closes_its_async_pool(emu: ProviderEmulator) -> None:
    collect_earlier_garbage()
    reranker = make_reranker(emu)
    await reranker.arerank(QUERY, ["apple"])
    reranker.close()  # sync code called from a coroutine: the pool is closed by a task on this loop
    await asyncio.gather(*(task for task in asyncio.all_tasks() if task is not asyncio.current_task()))
    del reranker
    assert collected_resource_warnings() == []


def test_sync_close_reaches_a_loop_running_in_another_thread(emu: ProviderEmulator) -> None:
    collect_earlier_garbage()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    reranker = make_reranker(emu)
    try:
        asyncio.run_coroutine_threadsafe(reranker.arerank(QUERY, ["apple"]), loop).result(timeout=10)
        reranker.close()
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
    del reranker
    assert collected_resource_warnings() == []


async def test_metadata_that_json_cannot_carry_is_stringified_on_the_wire_only(emu: ProviderEmulator) -> None:
    when = datetime(2024, 5, 1, tzinfo=UTC)
    doc = Document("apple pie", id="d", metadata={"when": when})
    with make_reranker(emu, options={"send_metadata": True}) as reranker:
        response = reranker.rerank(QUERY, [doc])
    assert emu.requests[0].body["documents"][0]["metadata"] == {"when": str(when)}
    assert response.results[0].document.metadata["when"] is when


async def test_nan_in_metadata_is_an_input_error_before_any_request(emu: ProviderEmulator) -> None:
    doc = Document("apple pie", metadata={"score": float("nan")})
    reranker = make_reranker(emu, options={"send_metadata": True})
    with reranker, pytest.raises(InvalidInputError, match="JSON"):
        reranker.rerank(QUERY, [doc])
    assert emu.request_count == 0


def test_caller_headers_replace_defaults_whatever_their_case(emu: ProviderEmulator) -> None:
    sent: list[httpx.Headers] = []
    with httpx.Client(event_hooks={"request": [lambda request: sent.append(request.headers)]}) as client:
        headers = {"Authorization": f"Bearer {API_KEY}", "User-Agent": "my-app/2", "CONTENT-TYPE": "application/json"}
        with make_reranker(emu, api_key="sk-other-key", headers=headers, http_client=client) as reranker:
            reranker.rerank(QUERY, ["apple"])
    assert sent[0].get_list("authorization") == [f"Bearer {API_KEY}"]
    assert sent[0].get_list("user-agent") == ["my-app/2"]
    assert sent[0].get_list("content-type") == ["application/json"]
    assert emu.request_count == 1  # and the emulator accepted the caller's key
