"""The `rerank` command line: `rerank QUERY DOCS`, `rerank --queries FILE`, `rerank eval`, `rerank export-onnx`."""

from rerank_core.cli.main import main

__all__ = ["main"]
