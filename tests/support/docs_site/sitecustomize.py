"""Loaded by every Python process the docs test starts: routes providers and local models to test stand-ins.

`DOC_ROUTES` (JSON, provider -> base URL of a loopback emulator) replaces every `base_url`, the default one and
any an example passes, so examples run as written against the emulators. `DOC_TINY_MODEL` (a folder with the tiny
cross-encoder and its ONNX export) stands in for every hub id and every absolute path that is not a folder (the
docs' `/models/...` placeholders for the reader's own model): the hub is never reached. A relative path is left
alone: it names a folder the page itself makes. The patches apply when the modules are first imported, so a
process that never imports rerank_core pays nothing.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import ipaddress
import json
import os
import re
import socket
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

ROUTES: dict[str, str] = json.loads(os.environ.get("DOC_ROUTES") or "{}")
TINY_MODEL = os.environ.get("DOC_TINY_MODEL", "")
TINY_LLM = os.environ.get("DOC_TINY_LLM", "")
# Model names of LLM rerankers (hub ids, and the docs' placeholder for one of your own): the tiny Qwen3 stands in.
LLM_NAMES = re.compile(r"qwen3-reranker|llm-reranker|mxbai-rerank-\w+-v2|bge-reranker-v2-gemma", re.IGNORECASE)


def routed_model(model: Any) -> Any:
    if model is None:  # the default model: what the environment names, else the hub default
        model = os.environ.get("RERANK_LOCAL_MODEL") or "cross-encoder/ms-marco-MiniLM-L-6-v2"
    if not isinstance(model, str) or not TINY_MODEL or os.path.isdir(os.path.expanduser(model)):
        return model
    if model.startswith((".", "~")):
        # A relative path names a folder the page itself makes (`./minilm-onnx`): it must be there.
        return model
    if TINY_LLM and LLM_NAMES.search(model):
        return TINY_LLM
    return TINY_MODEL  # a hub id, or an absolute placeholder for the reader's own folder (`/models/...`)


def with_routed_model(function: Callable[..., Any], position: int) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if "model" in kwargs:
            kwargs["model"] = routed_model(kwargs["model"])
        elif len(args) > position:
            args = (*args[:position], routed_model(args[position]), *args[position + 1 :])
        return function(*args, **kwargs)

    return wrapper


def patch_http(module: ModuleType) -> None:
    resolve = getattr(module, "_resolve_base_url")  # noqa: B009  (private: mypy sees no attribute)

    def routed(base_url: str | None, default: str | None, provider: str) -> str:
        return str(resolve(ROUTES.get(provider, base_url), default, provider))

    setattr(module, "_resolve_base_url", routed)  # noqa: B010


def patch_class(attribute: str) -> Callable[[ModuleType], None]:
    def patch(module: ModuleType) -> None:
        cls = getattr(module, attribute)
        cls.__init__ = with_routed_model(cls.__init__, 1)

    return patch


def patch_function(attribute: str) -> Callable[[ModuleType], None]:
    def patch(module: ModuleType) -> None:
        setattr(module, attribute, with_routed_model(getattr(module, attribute), 0))

    return patch


PATCHES: dict[str, Callable[[ModuleType], None]] = {
    "rerank_core.http.reranker": patch_http,
    "rerank_core.local.engines": patch_function("local_cross_encoder"),
    "rerank_core.local.onnx_engine": patch_class("OnnxCrossEncoder"),
    "rerank_core.local.torch_engine": patch_class("TorchCrossEncoder"),
    "rerank_core.local.onnx_export": patch_function("export"),
}


class PatchingLoader(importlib.abc.Loader):
    def __init__(self, loader: Any, patch: Callable[[ModuleType], None]) -> None:
        self.loader = loader
        self.patch = patch

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)  # type: ignore[no-any-return]

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        self.patch(module)


class PatchingFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        patch = PATCHES.get(fullname)
        if patch is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = PatchingLoader(spec.loader, patch)
                return spec
        return None


_connect = socket.socket.connect


def loopback_only(self: socket.socket, address: Any) -> None:
    """As in the test process: an example that would reach the network fails instead."""
    if self.family in (socket.AF_INET, socket.AF_INET6):
        host = address[0]
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            raise ConnectionRefusedError(f"the docs test may only reach loopback, not {host!r}")
    _connect(self, address)


setattr(socket.socket, "connect", loopback_only)  # noqa: B010  (as monkeypatch.setattr in the test process)
sys.meta_path.insert(0, PatchingFinder())
