"""Reading documents and queries: JSON lines, a JSON array, text lines or CSV, from a file or stdin.

Documents are read lazily (`iter_documents`), so a large file is scored batch by batch without being held
whole. Every file is read as UTF-8 with an optional byte-order mark (spreadsheets write one into CSV). Whatever a
line holds, a malformed one is a `UserError` naming the file and line, never a traceback: JSON nested deeper
than `MAX_JSON_DEPTH`, numbers Python will not read, CSV it cannot parse. A CSV cell may be as large as the file.
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from rerank_core.cli.common import UserError
from rerank_core.errors import InvalidInputError
from rerank_core.models import Document, DocumentId, document_id, is_blank, to_document, validate_query

FORMATS = ("jsonl", "json", "txt", "csv")
ENCODING = "utf-8-sig"  # UTF-8, with a byte-order mark skipped if there is one
MAX_JSON_DEPTH = 64
"""Nesting levels a JSON line (or array item) may have: metadata nested deeper is a mistake, not data."""


@dataclass
class Query:
    text: str
    id: DocumentId | None = None
    documents: list[Document] | None = None
    """Candidates of this query only; None means the shared documents file."""


class Source:
    """A file, or stdin spooled to a temporary file (so its format can be sniffed and its size is known)."""

    def __init__(self, path: str) -> None:
        self.name = "stdin" if path == "-" else path
        if path == "-":
            self._spool = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the Source
            shutil.copyfileobj(sys.stdin.buffer, self._spool)
            self._spool.flush()
            self.size = self._spool.tell()
            self.path: Path | None = None
        else:
            self.path = Path(path)
            if not self.path.is_file():
                raise UserError(f"file not found: {path}")
            self.size = self.path.stat().st_size

    def open_binary(self) -> IO[bytes]:
        if self.path is not None:
            return self.path.open("rb")
        self._spool.seek(0)
        return self._spool

    def lines(self) -> Iterator[tuple[int, str, int]]:
        """(line number, text, bytes read so far) for every line, decoded as UTF-8."""
        file = self.open_binary()
        done = 0
        try:
            for number, raw in enumerate(file, start=1):
                done += len(raw)
                if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise UserError(f"{self.name}:{number}: not UTF-8 text") from None
                yield number, text.rstrip("\r\n"), done
        finally:
            if self.path is not None:
                file.close()

    def text(self) -> str:
        data = self.open_binary().read() if self.path is None else self.path.read_bytes()
        try:
            return data.decode(ENCODING)
        except UnicodeDecodeError:
            raise UserError(f"{self.name} is not UTF-8 text") from None

    def first_line(self) -> str:
        return next((text.strip() for _, text, _ in self.lines() if text.strip()), "")


def detect_format(source: Source, forced: str | None) -> str:
    if forced:
        return forced
    suffix = Path(source.name).suffix.lower().lstrip(".")
    first = source.first_line()
    if suffix in ("json", "jsonl") or suffix not in FORMATS:
        if first.startswith("["):
            return "json"
        if suffix in ("json", "jsonl") or first.startswith(("{", '"')):
            return "jsonl"
        return "txt"
    return suffix


def iter_documents(source: Source, fmt: str) -> Iterator[tuple[Document, float]]:
    """Every document with the fraction of the input read so far (for a progress bar)."""
    if fmt == "json":
        items = json_array(source)
        for number, item in enumerate(items):
            yield json_document(item, source.name, f"[{number}]"), (number + 1) / max(len(items), 1)
        return
    total = max(source.size, 1)
    if fmt == "csv":
        yield from csv_documents(source, total)
        return
    for number, text, done in source.lines():
        if not text.strip():
            continue
        if fmt == "txt":
            yield Document(text=text), done / total
        else:
            yield json_document(json_line(source.name, number, text), source.name, number), done / total


def json_line(name: str, number: int, text: str) -> Any:
    return parse_json(text, name, number)


def json_array(source: Source) -> list[Any]:
    """A `.json` file holding one array (read whole: JSON has no line structure to stream on)."""
    items = parse_json(source.text(), source.name, None, depth=MAX_JSON_DEPTH + 1)
    if not isinstance(items, list):
        raise UserError(f"{source.name}: expected a JSON array (or JSON lines)")
    return items


def parse_json(text: str, name: str, line: int | None, depth: int = MAX_JSON_DEPTH) -> Any:
    """One JSON value (line `line` of file `name`, or the whole file), nested at most `depth` levels; every way
    it can fail is a `UserError` naming the file and line."""
    where = name if line is None else f"{name}:{line}"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise UserError(f"{name}:{line or error.lineno}: not valid JSON ({error.msg})") from None
    except RecursionError:
        raise UserError(f"{where}: JSON nested deeper than {depth} levels") from None
    except ValueError as error:  # an integer with more digits than Python converts
        raise UserError(f"{where}: not valid JSON ({error})") from None
    if nesting(value, depth) > depth:
        raise UserError(f"{where}: JSON nested deeper than {depth} levels")
    return value


def nesting(value: Any, limit: int) -> int:
    """How deeply `value` nests lists and objects (1 for a flat one), counted up to `limit` + 1."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            break
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return deepest


def json_document(item: Any, name: str, where: int | str) -> Document:
    """A JSON value as a document, read the way the library reads a str or a mapping with "text"."""
    position = f"{name}:{where}" if isinstance(where, int) else f"{name}{where}"
    if isinstance(item, str) or (isinstance(item, dict) and isinstance(item.get("text"), str)):
        try:
            return to_document(item, "the document")
        except InvalidInputError as error:
            raise UserError(f"{position}: {error.message}") from None
    raise UserError(f'{position}: expected a JSON string or an object with a "text" field')


def csv_documents(source: Source, total: int) -> Iterator[tuple[Document, float]]:
    done = line = 0

    def text_lines() -> Iterator[str]:
        nonlocal done, line
        for line, text, read in source.lines():  # noqa: B007 - `line` names the line a CSV error is on
            done = read
            yield text + "\n"

    # A cell can be no larger than the file; the module's default (128 KiB) refuses long documents.
    csv.field_size_limit(max(csv.field_size_limit(), min(source.size, sys.maxsize)))
    reader = csv.DictReader(text_lines())
    try:
        if reader.fieldnames is None or "text" not in reader.fieldnames:
            raise UserError(f'{source.name}: a CSV file needs a header row with a "text" column')
        for row in reader:
            raw_id = row.get("id")
            metadata = {k: v for k, v in row.items() if k not in ("text", "id") and k is not None}
            yield Document(text=row["text"] or "", id=raw_id or None, metadata=metadata), done / total
    except csv.Error as error:
        raise UserError(f"{source.name}:{line}: not valid CSV ({error})") from None


def parse_queries(source: Source) -> list[Query]:
    """One query a line: text, or JSON lines with "query" (optional "id", optional own "documents"); or a
    `.json` array of the same values. Lines that show nothing are skipped in text; in JSON they are an error."""
    fmt = detect_format(source, None)
    if fmt == "txt":
        return [Query(text=text.strip()) for _, text, _ in source.lines() if not is_blank(text)]
    if fmt == "csv":
        raise UserError(f"{source.name}: queries must be JSON lines, a JSON array or text, one query per line")
    items: list[tuple[int | str, Any]]
    if fmt == "json":
        items = [(f"[{number}]", item) for number, item in enumerate(json_array(source))]
    else:
        items = [(number, json_line(source.name, number, text)) for number, text, _ in source.lines() if text.strip()]
    return [query_item(item, source.name, where) for where, item in items]


def query_item(item: Any, name: str, where: int | str) -> Query:
    position = f"{name}:{where}" if isinstance(where, int) else f"{name}{where}"
    text = item if isinstance(item, str) else item.get("query") if isinstance(item, dict) else None
    if not isinstance(text, str):
        raise UserError(f'{position}: expected a JSON string or an object with a "query" field')
    try:
        validate_query(text, "the query")
    except InvalidInputError as error:
        raise UserError(f"{position}: {error.message}") from None
    if isinstance(item, str):
        return Query(text=item)
    documents = item.get("documents")
    if documents is not None and not isinstance(documents, list):
        raise UserError(f'{position}: "documents" must be a list')
    own = None if documents is None else [json_document(doc, name, where) for doc in documents]
    return Query(text=text, id=document_id(item.get("id")), documents=own)
