"""Writing results as they finish: a table, one JSON document (an array streamed item by item) or JSON lines."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TextIO

from rerank_core.cli.common import describe
from rerank_core.cli.inputs import Query
from rerank_core.errors import RerankError
from rerank_core.models import RerankResponse


@dataclass
class Outcome:
    query: Query
    response: RerankResponse
    documents: int
    """How many documents were scored."""


def result_rows(response: RerankResponse) -> list[dict[str, Any]]:
    rows = []
    for rank, result in enumerate(response.results, start=1):
        row: dict[str, Any] = {
            "rank": rank,
            "index": result.index,
            "score": result.relevance_score,
            "id": result.document.id,
            "text": result.document.text,
        }
        if result.document.metadata:
            row["metadata"] = result.document.metadata
        if result.window is not None:
            row["window"] = result.window.model_dump()
        rows.append(row)
    return rows


def as_json(outcome: Outcome) -> dict[str, Any]:
    response = outcome.response
    return {
        "query": outcome.query.text,
        "query_id": outcome.query.id,
        "provider": response.provider,
        "model": response.model,
        "passthrough": response.passthrough,
        "results": result_rows(response),
    }


def error_record(query: Query, error: RerankError) -> dict[str, Any]:
    return {
        "query": query.text,
        "query_id": query.id,
        "error": {
            "type": type(error).__name__,
            "message": describe(error),
            "provider": error.provider,
            "status_code": error.status_code,
        },
    }


class Writer:
    """Writes each finished query at once and flushes, so an interrupted or failing run keeps what was done.
    A query goes out in one write(), so a Ctrl-C lands between queries, never inside one."""

    def __init__(self, fmt: str, many: bool, out: TextIO) -> None:
        self.fmt, self.many, self.out = fmt, many, out
        self.written = 0
        self._open_array = False

    def result(self, outcome: Outcome) -> None:
        if self.fmt == "json":
            text = self._json_item(as_json(outcome))
        elif self.fmt == "jsonl":
            lines = [
                {"query": outcome.query.text, "query_id": outcome.query.id, **row}
                for row in result_rows(outcome.response)
            ]
            text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
        else:
            text = render_table(outcome)
            if self.many:
                text = ("\n" if self.written else "") + f"query: {outcome.query.text}\n" + text
        self._write(text)

    def error(self, query: Query, error: RerankError) -> None:
        record = error_record(query, error)
        if self.fmt == "json":
            text = self._json_item(record)
        elif self.fmt == "jsonl":
            text = json.dumps(record, ensure_ascii=False) + "\n"
        else:
            prefix = "\n" if self.written else ""
            text = f"{prefix}query: {query.text}\nerror: {record['error']['message']}\n"
        self._write(text)

    def close(self) -> None:
        """End the JSON array (also on Ctrl-C, so the file stays valid JSON)."""
        if self.fmt == "json" and self.many:
            self.out.write("[]\n" if not self._open_array else "\n]\n")
            self._open_array = False
            self.many = False  # closing twice writes nothing more
            self.out.flush()

    def _json_item(self, payload: dict[str, Any]) -> str:
        text = json.dumps(payload, ensure_ascii=False, indent=2)
        if not self.many:
            return text + "\n"
        indented = "\n".join("  " + line for line in text.splitlines())
        opening = ",\n" if self._open_array else "[\n"
        self._open_array = True
        return opening + indented

    def _write(self, text: str) -> None:
        self.out.write(text)
        self.written += 1
        self.out.flush()


def render_table(outcome: Outcome) -> str:
    response = outcome.response
    lines = [f"{'rank':>4}  {'score':>8}  {'index':>5}  {'id':<12}  text"]
    for row in result_rows(response):
        text = " ".join(row["text"].split())
        text = text if len(text) <= 70 else text[:69] + "…"
        shown_id = "" if row["id"] is None else str(row["id"])  # an id of 0 is still an id
        lines.append(f"{row['rank']:>4}  {row['score']:>8.4f}  {row['index']:>5}  {shown_id:<12}  {text}")
    note = (
        " (passthrough: reranking failed, so every document is in its original order and no score is a relevance)"
        if response.passthrough
        else ""
    )
    lines.append(f"-- {response.provider}:{response.model or 'default'}, {outcome.documents} documents{note}")
    return "\n".join(lines) + "\n"
