"""Checks of settings (constructor arguments, config values), shared so that one rule reads the same everywhere."""

from __future__ import annotations

from typing import Literal, overload

from rerank_core.errors import ConfigurationError


@overload
def setting_int(
    name: str,
    value: object,
    *,
    minimum: int,
    maximum: int | None = None,
    allow_none: Literal[False] = False,
    provider: str | None = None,
) -> int: ...


@overload
def setting_int(
    name: str,
    value: object,
    *,
    minimum: int,
    maximum: int | None = None,
    allow_none: bool,
    provider: str | None = None,
) -> int | None: ...


def setting_int(
    name: str,
    value: object,
    *,
    minimum: int,
    maximum: int | None = None,
    allow_none: bool = False,
    provider: str | None = None,
) -> int | None:
    """`value` if it is an int (not a bool) from `minimum` to `maximum`, or None where allowed; else a
    ConfigurationError naming the setting and the rule."""
    if value is None and allow_none:
        return None
    too_big = maximum is not None and isinstance(value, int) and value > maximum
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or too_big:
        most = f" and <= {maximum}" if maximum is not None else ""
        none = " or None" if allow_none else ""
        raise ConfigurationError(f"{name} must be an int >= {minimum}{most}{none}, not {value!r}", provider=provider)
    return value
