"""Request bodies as JSON, whatever the caller's metadata holds.

Most bodies encode at the first try. Metadata the caller sends (`rank_fields`, `send_metadata`) may hold what JSON
cannot say as it is: keys that are tuples or of mixed types, values nested past Python's recursion limit, a
structure that contains itself, NaN. Keys then become strings, unknown values their `str()` (as the first try
does), and what has no JSON form at all is an `UnsupportedInputError` naming where it is: another reranker (a
local one, which sends nothing) may still take the same documents.

With orjson installed (the `fast-json` extra), request bodies are encoded by orjson, told to refuse what it would
write otherwise than the standard library (subclasses of str, int, dict and list; numpy numbers, datetimes,
dataclasses, and keys that are not strings): those bodies, and any whose orjson form holds a null (which may have
been a NaN, written so by orjson where we refuse it), go the standard library's way. Enums are sent as their value
by both. The body means the same either way; only its bytes differ (orjson writes non-ASCII characters as UTF-8,
not as \\u escapes). Cache keys (`dumps`) never use orjson: they must not change with what is installed.
"""

from __future__ import annotations

import contextlib
import enum
import json
import math
from collections.abc import Iterator
from types import ModuleType
from typing import Any, NoReturn

from rerank_core.errors import UnsupportedInputError

_orjson: ModuleType | None
try:
    import orjson as _orjson
except ImportError:  # installed without the fast-json extra
    _orjson = None
_ORJSON_ALIKE = (
    _orjson.OPT_PASSTHROUGH_SUBCLASS | _orjson.OPT_PASSTHROUGH_DATETIME | _orjson.OPT_PASSTHROUGH_DATACLASS
    if _orjson is not None
    else 0
)
"""With these, orjson hands what it would write otherwise than the standard library to `default` (which refuses)."""

MAX_DEPTH = 200
"""Nesting levels a body may have when it needs the careful encoding (the first try goes as deep as Python)."""


def dumps(value: Any, *, provider: str, sort_keys: bool = False, where: str = "body") -> str:
    """`value` as JSON (non-ASCII kept, no NaN); see the module docstring for what is converted. `where` names
    `value` in an error."""
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False, default=str, sort_keys=sort_keys)
    except (TypeError, ValueError, RecursionError):
        pass
    plain = _Plain(provider).convert(value, where, 0)
    return json.dumps(plain, ensure_ascii=False, allow_nan=False, sort_keys=sort_keys)


def body_bytes(value: Any, *, provider: str) -> bytes:
    """A request body as compact JSON, converted as `dumps` does, enums as their value: by orjson when it says the
    same (see the module docstring), else by the standard library as ASCII (non-ASCII characters as \\u escapes),
    which keeps CPython's encoder on its one-byte-per-character string, and turning it into bytes is a copy."""
    if _orjson is not None:
        try:
            encoded: bytes = _orjson.dumps(value, default=_refuse, option=_ORJSON_ALIKE)
        except TypeError:  # also a lone surrogate, an integer beyond 64 bits, nesting past orjson's limit
            pass
        else:
            if _shows_no_nan(value) or not _holds_null(encoded):
                return encoded
    try:
        text = json.dumps(value, allow_nan=False, default=_wire_value, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError):
        plain = _Plain(provider, wire=True).convert(value, "body", 0)
        text = json.dumps(plain, allow_nan=False, separators=(",", ":"))
    return text.encode("ascii")


def _refuse(value: object) -> NoReturn:
    raise TypeError(f"left to the standard library: {type(value).__name__}")


_SCALARS = (str, int, bool, type(None))
_NOT_FLOATS = frozenset(_SCALARS)
_BEFORE_A_VALUE = b":,["


def _shows_no_nan(body: Any) -> bool:
    """True if a glance shows `body` holds no NaN or infinity: a dict of strings, integers, finite floats and lists
    of strings or integers, as most bodies are. False means look closer, not that there is one."""
    if type(body) is not dict:
        return False
    for value in body.values():
        kind = type(value)
        if kind is float:
            if not math.isfinite(value):
                return False
        elif kind is list or kind is tuple:
            if not set(map(type, value)) <= _NOT_FLOATS:
                return False
        elif kind not in _NOT_FLOATS:
            return False
    return True


def _holds_null(encoded: bytes) -> bool:
    """Whether orjson's output holds a null token (from None, or from a NaN or an infinity). Outside strings,
    a value follows one of `:,[`; the word null in a text rarely does, and where it does the body only goes the
    slower way."""
    at = encoded.find(b"null")
    while at >= 0:
        if at == 0 or encoded[at - 1] in _BEFORE_A_VALUE:
            return True
        at = encoded.find(b"null", at + 4)
    return False


def _wire_value(value: object) -> object:
    """What a request sends for a value JSON has no form for: an enum's value (as orjson sends it), else `str()`."""
    return value.value if isinstance(value, enum.Enum) else str(value)


@contextlib.contextmanager
def without_orjson() -> Iterator[None]:
    """Encode as an install without orjson does, inside the block (for tests and benchmarks; not thread-safe)."""
    global _orjson
    saved, _orjson = _orjson, None
    try:
        yield
    finally:
        _orjson = saved


def loads(text: str | bytes) -> Any | None:
    """A response body's JSON, or None when it is not JSON, holds a number too long to read, or is nested past
    Python's recursion limit: every reader of provider bodies goes through here, so none of those escapes raw."""
    try:
        return json.loads(text) if text else None
    except (ValueError, RecursionError):
        return None


class _Plain:
    """Converts to plain JSON values, tracking the containers on the current path to find cycles."""

    def __init__(self, provider: str, *, wire: bool = False) -> None:
        self.provider = provider
        self.wire = wire
        """Converting a request body: an enum becomes its value (else, as any unknown value, its `str()`)."""
        self.open: set[int] = set()

    def convert(self, value: Any, where: str, depth: int) -> Any:
        if isinstance(value, _SCALARS):
            return value
        if isinstance(value, float):
            if not math.isfinite(value):
                raise self._refuse(f"{where} is {value}: JSON has no NaN or infinity", "Remove NaN and infinite values")
            return value
        if self.wire and isinstance(value, enum.Enum):
            return self.convert(value.value, where, depth + 1)
        if not isinstance(value, dict | list | tuple):
            return str(value)
        if depth >= MAX_DEPTH:
            raise self._refuse(f"{where} is nested deeper than {MAX_DEPTH} levels", "Flatten the metadata you send")
        if id(value) in self.open:
            raise self._refuse(f"{where} contains itself", "Send metadata without a reference to itself")
        self.open.add(id(value))
        try:
            if isinstance(value, dict):
                return {_key(key): self.convert(item, f"{where}[{key!r}]", depth + 1) for key, item in value.items()}
            return [self.convert(item, f"{where}[{index}]", depth + 1) for index, item in enumerate(value)]
        finally:
            self.open.discard(id(value))

    def _refuse(self, problem: str, fix: str) -> UnsupportedInputError:
        return UnsupportedInputError(
            f"the request cannot be encoded as JSON: {problem}",
            provider=self.provider,
            hint=f"{fix} (from the metadata named in rank_fields or send_metadata, or from options)",
        )


def _key(key: object) -> str:
    """A key as JSON writes it: str as is, numbers, booleans and None as json.dumps spells them, else `str()`."""
    if isinstance(key, str):
        return key
    if isinstance(key, bool | int | float) or key is None:
        return json.dumps(key)
    return str(key)
