"""The fast JSON path says exactly what the standard library says: a request body encoded by orjson (installed
with the `fast-json` extra) parses to the same value as the body the standard library encodes; every value the
two would write differently, every value orjson refuses, and every body whose orjson form holds a null, goes the
standard library's way byte for byte; NaN and cycles are refused alike; and an install without orjson works
unchanged."""

from __future__ import annotations

import datetime
import decimal
import enum
import json
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import numpy
import orjson
import pytest

from rerank_core import HTTPReranker, UnsupportedInputError
from rerank_core._json import body_bytes, without_orjson
from tests.support.emulator import ProviderEmulator
from tests.support.fixtures import StartEmulator

ROOT = Path(__file__).resolve().parents[2]


def _nested(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels):
        value = [value]
    return value


class Colour(enum.Enum):
    RED = "red"


class StrColour(enum.StrEnum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class Label(str):
    pass


def both_ways(body: Any) -> tuple[bytes, bytes]:
    """`body` encoded as sent with orjson installed, and as an install without it sends it."""
    fast = body_bytes(body, provider="p")
    with without_orjson():
        return fast, body_bytes(body, provider="p")


PLAIN_BODIES: dict[str, Any] = {
    "ascii": {"model": "m", "query": "q", "documents": ["a", "b"], "top_n": 2},
    "non-ASCII and emoji": {"query": "café ±2 μg/ml", "documents": ["naïve – 😀", "日本語"]},
    "metadata": {"documents": [{"text": "t", "id": "7", "metadata": {"year": 2024, "tags": ["x", False, True]}}]},
    "the word null in a text": {"query": "null hypothesis", "documents": ["rejects the null", "null: a word"]},
    "tuples": {"documents": ("a", ("b", 1))},
    "numbers": {"a": 1e16, "b": 1e-7, "c": 0.1, "d": -0.0, "e": 2**63 - 1, "f": -(2**63), "g": 0},
    "escapes": {"query": 'quote " backslash \\ newline \n tab \t nul \x00 del \x7f'},
    "nested 90 levels": {"deep": _nested(90)},
}


@pytest.mark.parametrize("body", PLAIN_BODIES.values(), ids=PLAIN_BODIES.keys())
def test_a_plain_body_parses_to_what_the_standard_library_sends(body: Any) -> None:
    fast, standard = both_ways(body)
    assert fast == orjson.dumps(body)  # the fast path was taken
    assert json.loads(fast) == json.loads(standard)
    fast.decode("utf-8")  # strict UTF-8, as JSON on the wire must be


UNLIKE_VALUES: dict[str, Any] = {
    "datetime": datetime.datetime(2024, 1, 2, 3, 4, 5),
    "date": datetime.date(2024, 1, 2),
    "numpy float": numpy.float64(0.5),
    "numpy int": numpy.int64(3),
    "decimal": decimal.Decimal("1.10"),
    "uuid": uuid.UUID(int=1),
    "str subclass": Label("label"),
    "non-str keys": {1: "a", None: "b", 2.5: "c", False: "d"},
    "integer beyond 64 bits": 2**64,
    "negative integer beyond 64 bits": -(2**63) - 1,
    "lone surrogate": "bad \ud800",
    "nested past orjson's limit": _nested(300),
    "set": {"a"},
    "None": None,
    "a null between punctuation in a text": "[null]",
}


@pytest.mark.parametrize("value", UNLIKE_VALUES.values(), ids=UNLIKE_VALUES.keys())
def test_a_value_orjson_would_write_otherwise_goes_the_standard_way(value: Any) -> None:
    fast, standard = both_ways({"documents": [{"text": "t", "metadata": {"field": value}}]})
    assert fast == standard


@pytest.mark.parametrize("member", [Colour.RED, StrColour.RED, Level.HIGH], ids=["enum", "str enum", "int enum"])
def test_an_enum_is_sent_as_its_value_either_way(member: enum.Enum) -> None:
    fast, standard = both_ways({"documents": [{"text": "t", "metadata": {"field": member}}]})
    assert fast == standard
    assert json.loads(fast)["documents"][0]["metadata"]["field"] == member.value


PLACES_FOR_NAN: dict[str, Any] = {
    "in metadata": lambda x: {"documents": [{"text": "t", "metadata": {"score": x}}]},
    "an option": lambda x: {"query": "q", "documents": ["a"], "temperature": x},
    "in a list": lambda x: {"query": "q", "documents": ["a"], "weights": [1, x]},
    "first in a list": lambda x: {"query": "q", "weights": [x]},
}


@pytest.mark.parametrize("where", PLACES_FOR_NAN.values(), ids=PLACES_FOR_NAN.keys())
@pytest.mark.parametrize("number", [float("nan"), float("inf"), -float("inf")])
def test_nan_and_infinities_are_refused_as_without_orjson(number: float, where: Any) -> None:
    with pytest.raises(UnsupportedInputError, match="JSON has no NaN"):
        body_bytes(where(number), provider="p")
    with without_orjson(), pytest.raises(UnsupportedInputError, match="JSON has no NaN"):
        body_bytes(where(number), provider="p")


def test_a_body_that_contains_itself_is_refused_as_without_orjson() -> None:
    cycle: dict[str, Any] = {}
    cycle["self"] = cycle
    with pytest.raises(UnsupportedInputError, match="contains itself"):
        body_bytes({"metadata": cycle}, provider="p")
    with without_orjson(), pytest.raises(UnsupportedInputError, match="contains itself"):
        body_bytes({"metadata": cycle}, provider="p")


@pytest.fixture
def emu(start_emulator: StartEmulator) -> ProviderEmulator:
    return start_emulator("generic")


@pytest.mark.parametrize("fast", [True, False], ids=["orjson", "standard library"])
def test_the_server_reads_the_same_request_either_way(emu: ProviderEmulator, fast: bool) -> None:
    docs: list[dict[str, Any]] = [{"text": "café 😀", "metadata": {"n": 1.5, "tags": ["x", True]}}, {"text": "plain"}]
    reranker = HTTPReranker("generic", model="m", base_url=emu.base_url, api_key="k", options={"send_metadata": True})
    if fast:
        response = reranker.rerank("q ±", docs)
    else:
        with without_orjson():
            response = reranker.rerank("q ±", docs)
    reranker.close()
    (request,) = emu.requests
    assert request.raw is not None
    assert ("café".encode() in request.raw) is fast  # UTF-8 from orjson, \u escapes from the standard library
    assert request.body["query"] == "q ±"
    assert request.body["documents"] == [{"text": "café 😀", "metadata": {"n": 1.5, "tags": ["x", True]}}, "plain"]
    assert [r.document.text for r in sorted(response.results, key=lambda r: r.index)] == ["café 😀", "plain"]


def test_an_install_without_orjson_encodes_with_the_standard_library() -> None:
    script = textwrap.dedent(
        """
        import sys
        sys.modules["orjson"] = None  # as if it were not installed
        from rerank_core._json import body_bytes
        print(body_bytes({"query": "café", "documents": ["a"]}, provider="p").decode("ascii"))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == '{"query":"caf\\u00e9","documents":["a"]}'
