"""Prompt recipes of LLM rerankers: how each family turns (instruction, query, document) into tokens, and which
tokens' logits at the last position give the relevance.

Each recipe follows its model card: the parts are tokenized one by one exactly as the card does, so the tokens
(and the scores) are the card's. The document is the only thing ever cut, from its end; the query, the
instruction and every fixed part (the suffix above all: the score is read right after it) are never cut. Nothing
here imports torch or transformers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from rerank_core.errors import ConfigurationError, UnsupportedInputError

SLOT = re.compile(r"\{(instruction|query|document)\}")

QWEN3_PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct "
    'provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
)
QWEN3_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
QWEN3_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"
MXBAI_PREFIX = (
    "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
    "<|im_start|>user\n"
)
MXBAI_TASK = (
    "You are a search relevance expert who evaluates how well documents match search queries. For each "
    "query-document pair, carefully analyze the semantic relationship between them, then provide your binary "
    "relevance judgment (0 for not relevant, 1 for relevant).\nRelevance:"
)
MXBAI_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n"
BGE_GEMMA_PROMPT = (
    "Given a query A and a passage B, determine whether the passage contains an answer to the query by providing "
    "a prediction of either 'Yes' or 'No'."
)


@dataclass(frozen=True)
class PromptRecipe:
    """How one family of LLM rerankers is prompted and scored.

    `parts` are tokenized one at a time and concatenated; they may hold `{instruction}`, `{query}` and
    `{document}`, and exactly one part holds `{document}`, at its very end, so cutting that part's tokens from the
    end cuts the document and nothing else. The relevance logit is logit(true) - logit(false) at the last
    position (whose sigmoid is P(true) of the two-way softmax), or logit(true) alone when there is no false token.
    """

    name: str
    parts: tuple[str, ...]
    true_token: str
    false_token: str | None
    default_instruction: str | None = None
    instruction_format: str = "{instruction}"
    """What `{instruction}` becomes for a given instruction (mxbai writes "instruction: ...\\n" before the query)."""
    bos: bool = False
    """Start with the tokenizer's BOS token (gemma)."""

    def __post_init__(self) -> None:
        holders = [part for part in self.parts if "{document}" in part]
        if len(holders) != 1 or not holders[0].endswith("{document}") or holders[0].count("{document}") != 1:
            raise ConfigurationError(
                f"prompt template of recipe {self.name!r} must hold {{document}} exactly once, at the end of its part",
                provider="local",
                hint="Put {document} last, or split the text after it into its own part",
            )
        if not any("{query}" in part for part in self.parts):
            raise ConfigurationError(f"prompt template of recipe {self.name!r} has no {{query}}", provider="local")

    def instruction_text(self, instruction: str | None) -> str:
        chosen = instruction if instruction is not None else self.default_instruction
        return "" if chosen is None else self.instruction_format.replace("{instruction}", chosen)


RECIPES: dict[str, PromptRecipe] = {
    "qwen3-reranker": PromptRecipe(
        name="qwen3-reranker",
        # The card tokenizes the prefix, the "<Instruct>...<Document>: doc" body and the suffix separately.
        parts=(QWEN3_PREFIX, "<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {document}", QWEN3_SUFFIX),
        true_token="yes",
        false_token="no",
        default_instruction=QWEN3_INSTRUCTION,
    ),
    "mxbai-rerank-v2": PromptRecipe(
        name="mxbai-rerank-v2",
        parts=(
            MXBAI_PREFIX,
            "{instruction}query: {query}",
            "\n",
            "document: {document}",
            "\n",
            MXBAI_TASK,
            MXBAI_SUFFIX,
        ),
        true_token="1",
        false_token="0",
        instruction_format="instruction: {instruction}\n",
    ),
    "bge-reranker-v2-gemma": PromptRecipe(
        name="bge-reranker-v2-gemma",
        parts=("A: {query}", "\n", "B: {document}", "\n", "{instruction}"),
        true_token="Yes",
        false_token=None,  # the card scores the "Yes" logit alone
        default_instruction=BGE_GEMMA_PROMPT,
        bos=True,
    ),
}
RECIPE_NAMES = tuple(RECIPES)

NAME_HINTS = (
    (re.compile(r"qwen3-reranker"), "qwen3-reranker"),
    (re.compile(r"mxbai-rerank-\w+-v2"), "mxbai-rerank-v2"),  # v1 models are DeBERTa cross-encoders
    (re.compile(r"bge-reranker-v2-gemma"), "bge-reranker-v2-gemma"),
)
"""What in a hub id or folder name names a family, checked before the architecture (for decoders only)."""
DECODER_FAMILIES = ("Qwen2", "Qwen3", "Gemma", "Llama", "Mistral", "Phi")
ARCHITECTURE_DEFAULTS = {"Qwen3ForCausalLM": "qwen3-reranker", "Qwen3ForSequenceClassification": "qwen3-reranker"}
"""Architectures whose reranker checkpoints are, in practice, all of one family."""


def custom_recipe(
    template: str, true_token: str, false_token: str | None, default_instruction: str | None
) -> PromptRecipe:
    """A recipe from a user's template: the text up to the end of `{document}` is tokenized as one piece (the
    document cut from its end), the rest (the suffix) as another."""
    end = template.find("{document}")
    if end < 0:
        raise ConfigurationError("prompt_template must contain {document}", provider="local")
    end += len("{document}")
    parts = tuple(part for part in (template[:end], template[end:]) if part)
    return PromptRecipe(
        name="custom",
        parts=parts,
        true_token=true_token,
        false_token=false_token,
        default_instruction=default_instruction,
    )


def check_recipe_options(
    recipe: object, prompt_template: object, true_token: object, false_token: object, instruction: object
) -> None:
    """Reject bad recipe settings at construction, before any loading."""
    if recipe is not None and recipe not in RECIPES:
        raise ConfigurationError(
            f"recipe must be one of {RECIPE_NAMES} or None, not {recipe!r}",
            provider="local",
            hint="For another causal LM give prompt_template, true_token and false_token instead",
        )
    for name, value in (
        ("prompt_template", prompt_template),
        ("true_token", true_token),
        ("false_token", false_token),
        ("instruction", instruction),
    ):
        if value is not None and (not isinstance(value, str) or (name != "instruction" and not value)):
            raise ConfigurationError(f"{name} must be a non-empty string or None, not {value!r}", provider="local")
    if recipe is not None and prompt_template is not None:
        raise ConfigurationError("give either recipe or prompt_template, not both", provider="local")
    if prompt_template is not None:
        if true_token is None:
            raise ConfigurationError(
                "prompt_template needs true_token (and usually false_token): the tokens whose logits score relevance",
                provider="local",
            )
        if isinstance(prompt_template, str) and isinstance(true_token, str):  # validates the template's slots
            custom_recipe(prompt_template, true_token, false_token if isinstance(false_token, str) else None, None)
    elif (true_token is not None or false_token is not None) and recipe is None:
        raise ConfigurationError("true_token and false_token go with prompt_template or recipe", provider="local")


def choose_recipe(
    model: str,
    architectures: Sequence[str],
    *,
    recipe: str | None,
    prompt_template: str | None,
    true_token: str | None,
    false_token: str | None,
) -> PromptRecipe | None:
    """The recipe for this model: the one asked for, else the family its name or architecture says, else None."""
    if prompt_template is not None:
        return custom_recipe(prompt_template, true_token or "", false_token, None)
    name = recipe
    decoder = any(a.endswith("ForCausalLM") or a.startswith(DECODER_FAMILIES) for a in architectures)
    if name is None and decoder:
        lowered = model.lower()
        name = next((family for hint, family in NAME_HINTS if hint.search(lowered)), None)
    if name is None:
        name = next((ARCHITECTURE_DEFAULTS[a] for a in architectures if a in ARCHITECTURE_DEFAULTS), None)
    if name is None:
        return None
    chosen = RECIPES[name]
    if true_token is not None:
        chosen = replace(chosen, true_token=true_token, false_token=false_token)
    return chosen


def fill(template: str, values: Mapping[str, str]) -> str:
    """`template` with its slots filled in one pass (so braces inside a query or document are left alone)."""
    return SLOT.sub(lambda match: values.get(match.group(1), match.group(0)), template)


def token_id(backend: Any, token: str, model: str) -> int:
    """The id of `token`: the vocabulary entry, else the single token its text encodes to."""
    found = backend.token_to_id(token)
    if found is not None:
        return int(found)
    ids = backend.encode(token, add_special_tokens=False).ids
    if len(ids) != 1:
        raise ConfigurationError(
            f"token {token!r} is not a single token in the tokenizer of {model!r} (it encodes to {len(ids)} tokens)",
            provider="local",
            hint="Give true_token / false_token as tokens of this model's vocabulary",
        )
    return int(ids[0])


def encode_prompts(
    backend: Any,
    recipe: PromptRecipe,
    query: str,
    texts: Sequence[str],
    instruction: str | None,
    max_length: int,
    bos_id: int | None,
    cut_text: Any,
    chars_per_token: int,
) -> list[list[int]]:
    """Token ids of every (query, document) prompt, unpadded. Only the document is cut, from its end, so the whole
    prompt fits `max_length`; a query (with its instruction) that leaves no room for a document is refused.

    `cut_text(text, limit)` shortens a huge document to `limit` characters at a word boundary before tokenizing;
    if that loses tokens the window would have held, the limit doubles until it does not.
    """
    values = {"instruction": recipe.instruction_text(instruction), "query": query}
    doc_index = next(i for i, part in enumerate(recipe.parts) if "{document}" in part)
    fixed = [
        [] if i == doc_index else list(backend.encode(fill(part, values), add_special_tokens=False).ids)
        for i, part in enumerate(recipe.parts)
    ]
    head: list[int] = [bos_id] if recipe.bos and bos_id is not None else []
    before = head + [t for part in fixed[:doc_index] for t in part]
    after = [t for part in fixed[doc_index + 1 :] for t in part]
    template = fill(recipe.parts[doc_index], values)  # "{document}" survives: it is not in `values`
    lead = template[: -len("{document}")]
    lead_tokens = len(backend.encode(lead, add_special_tokens=False).ids) if lead else 0
    budget = max_length - len(before) - len(after)
    if budget <= lead_tokens:
        raise UnsupportedInputError(
            f"the query and the prompt take {len(before) + len(after) + lead_tokens} tokens, which leaves no room for "
            f"the document within max_length={max_length}",
            provider="local",
            hint="Shorten the query or the instruction, or raise max_length (documents are cut, queries never are)",
        )
    prompts: list[list[int]] = []
    for text in texts:
        width = max_length * chars_per_token
        while True:
            encoding = backend.encode(lead + cut_text(text, width), add_special_tokens=False)
            if len(encoding.ids) >= budget or len(text) <= width:
                break
            width *= 2
        ids = encoding.ids
        if len(ids) > budget:
            kept = ids[:budget]
            # The cut must fall inside the document: the lead (instruction, query, labels) is never cut.
            if len(encoding.offsets) >= budget and encoding.offsets[budget - 1][1] <= len(lead):
                raise UnsupportedInputError(
                    f"the query leaves no room for the document within max_length={max_length}",
                    provider="local",
                    hint="Shorten the query or raise max_length",
                )
            ids = kept
        prompts.append(before + list(ids) + after)
    return prompts
