"""The installed rerank-core version, read once from the package metadata (which `VERSION` sets at build time)."""

from __future__ import annotations

from importlib import metadata

try:
    VERSION = metadata.version("rerank-core")
except metadata.PackageNotFoundError:  # a source tree that was never installed
    VERSION = "0+unknown"
