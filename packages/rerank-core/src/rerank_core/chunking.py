"""Long documents: split into overlapping windows, rerank every window, score each document by its best window.

A provider (or the local model) truncates what does not fit its window, so a passage deep inside a long document
is never seen. `ChunkingReranker` splits documents longer than `max_tokens_per_document` at word boundaries into
windows that overlap by `overlap` tokens (by default an eighth of the budget), sends all windows in one call, and
max-pools the window scores back onto the caller's documents; each document is returned exactly once, with the
winning span in `result.window`.
"""

from __future__ import annotations

import re
import threading
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rerank_core.base import Reranker, Scores, ascore_with, score_with
from rerank_core.config import default_overlap
from rerank_core.errors import ConfigurationError
from rerank_core.models import Document, Window

if TYPE_CHECKING:
    from rerank_core.local.base import CrossEncoderBase

WORD = re.compile(r"\S{1,100}")
"""Window boundaries fall between words; a run of 100+ non-space characters is cut like several words."""


PIECE = re.compile(r"[^\W\d_]+|\d+|[^\w\s]|_")


def approximate_tokens(word: str) -> int:
    """A subword tokenizer's count, estimated: a letter run costs 1 token plus 1 per 6 letters, a digit run 1 plus
    1 per 3 digits, each punctuation mark 1. Against the MiniLM WordPiece tokenizer this overestimates by ~15% on
    scientific prose and is about exact on markdown/code (benchmarks/long_documents.py), so windows rarely overflow.
    """
    tokens = 0
    for piece in PIECE.findall(word):
        if piece[0].isalpha():
            tokens += 1 + len(piece) // 6
        elif piece[0].isdigit():
            tokens += 1 + len(piece) // 3
        else:
            tokens += 1
    return max(tokens, 1)


TokenSpans = Callable[[str], list[tuple[int, int]]]
"""A tokenizer's view of a text: the character span of every token (special tokens excluded)."""


@dataclass(frozen=True)
class TokenBudget:
    """How to measure a document against the budget.

    Without `spans`, tokens are estimated from words (remote providers, whose tokenizers are unknown). With it
    (the local model's real tokenizer), every word costs exactly the tokens it is split into. `room` says how many
    tokens a document may take next to a given query, when the model's window is shared with the query.
    """

    spans: TokenSpans | None = None
    room: Callable[[str], int] | None = None


def split_windows(text: str, budget: int, overlap: int, spans: TokenSpans | None = None) -> list[tuple[int, int]]:
    """Character spans of overlapping windows of at most `budget` tokens; `[(0, len(text))]` if the text fits."""
    words = [(m.start(), m.end()) for m in WORD.finditer(text)]
    if spans is None:
        costs = [approximate_tokens(text[start:end]) for start, end in words]
    else:
        starts = [start for start, _ in spans(text)]
        costs = [bisect_left(starts, end) - bisect_left(starts, start) for start, end in words]
    if sum(costs) <= budget or len(words) < 2:
        return [(0, len(text))]

    windows: list[tuple[int, int]] = []
    first = 0
    while True:
        end, used = first, 0
        while end < len(words) and (end == first or used + costs[end] <= budget):
            used += costs[end]
            end += 1
        windows.append((words[first][0], words[end - 1][1]))
        if end >= len(words):
            return windows
        # Start the next window far enough back that it repeats about `overlap` tokens, but always move on.
        start, carried = end, 0
        while start - 1 > first and carried + costs[start - 1] <= overlap:
            carried += costs[start - 1]
            start -= 1
        first = start


class ChunkingReranker(Reranker):
    """Wraps `inner`; documents over `max_tokens_per_document` tokens are reranked window by window."""

    def __init__(
        self,
        inner: Reranker,
        *,
        max_tokens_per_document: int = 512,
        overlap: int | None = None,
        tokens: TokenBudget | None = None,
    ) -> None:
        if overlap is None:  # the user never chose one: derive it from the budget, so it always fits
            overlap = default_overlap(max_tokens_per_document)
        if overlap < 0 or overlap >= max_tokens_per_document:
            raise ConfigurationError(
                f"chunk overlap ({overlap}) must be >= 0 and smaller than max_tokens_per_document "
                f"({max_tokens_per_document})"
            )
        self.inner = inner
        self.max_tokens_per_document = max_tokens_per_document
        self.overlap = overlap
        self.tokens = tokens or TokenBudget()
        self.provider = inner.provider
        self.model = inner.model
        self.normalize = inner.normalize  # window scores stay raw; the outermost response normalizes them

    def __repr__(self) -> str:
        return f"ChunkingReranker({self.inner!r}, max_tokens_per_document={self.max_tokens_per_document})"

    def warm_up(self) -> None:
        self.inner.warm_up()

    def close(self) -> None:
        self.inner.close()

    async def aclose(self) -> None:
        await self.inner.aclose()

    def _score(self, query: str, documents: list[Document], top_n: int | None) -> Scores:
        plan = self._plan(query, documents)
        return plan.pool(self.inner._score(query, plan.pieces, plan.hint(top_n)))

    async def _ascore(self, query: str, documents: list[Document], top_n: int | None) -> Scores:
        plan = self._plan(query, documents)
        return plan.pool(await self.inner._ascore(query, plan.pieces, plan.hint(top_n)))

    @property
    def accepts_instruction(self) -> bool:
        return self.inner.accepts_instruction

    def _score_instructed(self, query: str, documents: list[Document], top_n: int | None, instruction: str) -> Scores:
        plan = self._plan(query, documents)
        return plan.pool(score_with(self.inner, query, plan.pieces, plan.hint(top_n), instruction))

    async def _ascore_instructed(
        self, query: str, documents: list[Document], top_n: int | None, instruction: str
    ) -> Scores:
        plan = self._plan(query, documents)
        return plan.pool(await ascore_with(self.inner, query, plan.pieces, plan.hint(top_n), instruction))

    def _plan(self, query: str, documents: list[Document]) -> _Plan:
        budget = self.max_tokens_per_document
        if self.tokens.room is not None:
            budget = min(budget, self.tokens.room(query))
        overlap = min(self.overlap, budget // 2)
        plan = _Plan()
        for index, doc in enumerate(documents):
            spans = split_windows(doc.text, budget, overlap, self.tokens.spans)
            if len(spans) == 1:
                plan.add(index, doc, None)
                continue
            for number, (start, end) in enumerate(spans):
                text = doc.text[start:end]
                plan.add(index, Document(text=text), Window(index=number, start=start, end=end, text=text))
        return plan


class _Plan:
    """The pieces sent for one call, and which document and window each came from."""

    def __init__(self) -> None:
        self.pieces: list[Document] = []
        self.owners: list[int] = []
        self.windows: list[Window | None] = []

    def add(self, owner: int, piece: Document, window: Window | None) -> None:
        self.pieces.append(piece)
        self.owners.append(owner)
        self.windows.append(window)

    def hint(self, top_n: int | None) -> int | None:
        # Max-pooling needs every window's score; without chunked documents the caller's hint still applies.
        return top_n if len(self.pieces) == len(set(self.owners)) else None

    def pool(self, scored: Scores) -> Scores:
        best: dict[int, float] = {}
        winners: dict[int, Window] = {}
        for piece, score in scored.scores.items():
            owner, window = self.owners[piece], self.windows[piece]
            if owner not in best or score > best[owner]:
                best[owner] = score
                if window is not None:
                    winners[owner] = window
        return Scores(
            scores=best,
            provider=scored.provider,
            model=scored.model,
            score_kind=scored.score_kind,
            usage=scored.usage,
            request_ids=scored.request_ids,
            windows=winners,
            cache=scored.cache,
            passthrough=scored.passthrough,
        )


def local_token_budget(reranker: Reranker) -> TokenBudget | None:
    """The real tokenizer and window of a local cross-encoder (either engine), or None for other rerankers."""
    from rerank_core.local.base import CrossEncoderBase  # imports no engine until a model is loaded

    if not isinstance(reranker, CrossEncoderBase):
        return None
    local = reranker
    spans = _LocalSpans(local)

    def room(query: str) -> int:
        return max(8, local.max_length - local.count_tokens(query) - local.special_tokens_per_pair)

    return TokenBudget(spans=spans, room=room)


class _LocalSpans:
    """Token offsets from a private copy of the local model's tokenizer.

    A copy, because the model's own tokenizer is shared with inference (and must not be used from two threads at
    once); one call per document gives every token's span, so windows fit the budget exactly.
    """

    def __init__(self, local: CrossEncoderBase) -> None:
        self.local = local
        self._backend: Any = None
        self._lock = threading.Lock()

    def __call__(self, text: str) -> list[tuple[int, int]]:
        with self._lock:
            if self._backend is None:
                from tokenizers import Tokenizer

                self._backend = Tokenizer.from_str(self.local.backend_tokenizer.to_str())
                self._backend.no_truncation()
                self._backend.no_padding()
            return [tuple(span) for span in self._backend.encode(text, add_special_tokens=False).offsets]
