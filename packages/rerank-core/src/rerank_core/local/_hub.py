"""Decide, before the first download, whether a model can come from the Hugging Face hub at all.

Without a reachable hub, huggingface_hub retries every request with backoff (over 20 s of retry lines), and the
error that finally comes out names a missing file rather than the missing network. One quick TCP probe of the
hub's endpoint, made once per process, turns that into a single line within seconds; a model that is already in
the local cache is then loaded from the cache without asking the hub.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from urllib.parse import urlsplit

from rerank_core.errors import ConfigurationError

MODEL_ENV = "RERANK_LOCAL_MODEL"
PROBE_TIMEOUT = 3.0
"""Seconds the probe waits for a TCP connection to the hub: far below huggingface_hub's retry storm."""
PROBE_TTL = 60.0
"""Seconds a probe's answer is reused, so a process whose network comes back asks again."""
_TRUE = {"1", "ON", "YES", "TRUE"}
_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")

_probes: dict[tuple[str, int], tuple[float, bool]] = {}
_probes_lock = threading.Lock()


def hub_offline() -> bool:
    """True when the user asked the Hugging Face libraries for the local cache only."""
    return any(os.environ.get(name, "").upper() in _TRUE for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT") or "https://huggingface.co"


def hub_reachable() -> bool:
    """Whether a TCP connection to the hub's endpoint opens within `PROBE_TIMEOUT` (cached for `PROBE_TTL`).

    Behind a proxy the direct probe says nothing about the hub, so it is not made and the hub is taken as
    reachable: huggingface_hub's own errors apply there.
    """
    if any(os.environ.get(name) for name in _PROXY_VARIABLES):
        return True
    parts = urlsplit(hub_endpoint())
    if not parts.hostname:
        return True
    key = (parts.hostname, parts.port or (80 if parts.scheme == "http" else 443))
    now = time.monotonic()
    with _probes_lock:
        cached = _probes.get(key)
        if cached is not None and now - cached[0] < PROBE_TTL:
            return cached[1]
        try:
            socket.create_connection(key, timeout=PROBE_TIMEOUT).close()
            reachable = True
        except OSError:  # no DNS, refused, unreachable, timed out
            reachable = False
        _probes[key] = (now, reachable)
        return reachable


def in_local_cache(model: str, revision: str | None) -> bool:
    """Whether the model's config.json is in the local Hugging Face cache (a download that finished once)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    try:
        found = try_to_load_from_cache(model, "config.json", revision=revision)
    except Exception:  # a malformed id or cache: the loader's own error will say what is wrong
        return False
    return isinstance(found, str)


def cache_only(model: str, revision: str | None) -> bool:
    """For a hub id: True if it must be loaded from the local cache only (offline, or the hub cannot be reached).

    Raises `ConfigurationError` at once when it must, but the model is not in the cache.
    """
    offline = hub_offline()
    if not offline and hub_reachable():
        return False
    if in_local_cache(model, revision):
        return True
    why = "HF_HUB_OFFLINE is set" if offline else f"the Hugging Face hub ({hub_endpoint()}) cannot be reached"
    raise ConfigurationError(
        f"cannot download model {model!r}: {why} and the model is not in the local cache",
        provider="local",
        hint=f"Offline, set {MODEL_ENV} (or load_reranker('local:<folder>')) to a model folder copied from a "
        "machine that has the hub (`rerank export-onnx MODEL FOLDER` writes one)"
        + ("" if offline else ", or set HF_HUB_OFFLINE=1 to use only the local cache")
        + "; check the id and revision",
    )


def refuse_missing_folder(model: str) -> None:
    """A name that can only be a path (`./x`, `/x`, `~/x`, or one with no `org/` part) but names no folder."""
    if looks_like_path(model) and not os.path.isdir(os.path.expanduser(model)):
        raise ConfigurationError(
            f"no model directory at {model!r} (from {os.getcwd()})",
            provider="local",
            hint=f"Check the path (and {MODEL_ENV}); a hub id looks like 'org/name'",
        )


def looks_like_path(model: str) -> bool:
    """True for a value that cannot be a hub id: hub ids of rerankers are `org/name`, never a bare name."""
    return model.startswith(("/", "./", "../", "~", ".")) or os.path.isabs(model) or "/" not in model
