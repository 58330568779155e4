"""Local model failures are typed (`ConfigurationError` with a hint) so the fallback chain moves on; huge documents
are cut before tokenizing, without changing the tokens scored. Both engines."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from rerank_core import ConfigurationError, TorchCrossEncoder, load_reranker
from rerank_core.local.base import CHARS_PER_TOKEN, CrossEncoderBase, backend_copy, refuse_empty_vocabulary

ENGINES = ["torch", "onnx"]
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")


@pytest.fixture
def both(tiny_cross_encoder: str, tiny_onnx: str, tmp_path: Path) -> Path:
    """A private copy of one folder holding the torch weights and the ONNX export, free to damage."""
    folder = tmp_path / "model"
    shutil.copytree(tiny_cross_encoder, folder)
    shutil.copytree(Path(tiny_onnx) / "onnx", folder / "onnx")
    return folder


def reranker(folder: Path, engine: str, **options: Any) -> CrossEncoderBase:
    built = load_reranker(f"local:{folder}", options={"engine": engine, **options})
    assert isinstance(built, CrossEncoderBase)
    return built


@pytest.mark.parametrize("engine", ENGINES)
def test_a_folder_without_tokenizer_files_is_refused(both: Path, engine: str) -> None:
    for name in TOKENIZER_FILES:
        (both / name).unlink(missing_ok=True)
    with pytest.raises(ConfigurationError, match="tokenizer") as caught:
        reranker(both, engine).rerank("q", ["d"])
    assert caught.value.hint
    assert "tokenizer" in caught.value.hint


def test_a_specials_only_vocabulary_is_refused() -> None:
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel

    specials_only = Tokenizer(
        WordLevel({"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "[MASK]": 4}, unk_token="[UNK]")
    )
    specials_only.add_special_tokens(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    with pytest.raises(ConfigurationError, match="no real tokenizer"):
        refuse_empty_vocabulary(backend_copy(specials_only.to_str()), "m")


@pytest.mark.parametrize(("engine", "weights"), [("torch", "model.safetensors"), ("onnx", "onnx/model.onnx")])
@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_or_truncated_weights_are_configuration_errors(
    both: Path, engine: str, weights: str, damage: str
) -> None:
    path = both / weights
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"\x00not a model\xff" * 100)
    with pytest.raises(ConfigurationError, match="cannot load cross-encoder") as caught:
        reranker(both, engine).rerank("q", ["d"])
    assert caught.value.provider == "local"
    assert caught.value.hint
    assert "truncated or corrupt" in caught.value.hint


@pytest.mark.parametrize("engine", ENGINES)
def test_a_broken_config_file_is_a_configuration_error(both: Path, engine: str) -> None:
    (both / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="cannot load cross-encoder"):
        reranker(both, engine).rerank("q", ["d"])


@pytest.mark.parametrize("engine", ENGINES)
def test_a_mistyped_value_in_the_model_config_is_a_configuration_error(both: Path, engine: str) -> None:
    config = json.loads((both / "config.json").read_text(encoding="utf-8"))
    config.pop("id2label", None)
    config.pop("label2id", None)
    config["num_labels"] = "one"
    (both / "config.json").write_text(json.dumps(config), encoding="utf-8")
    with pytest.raises(ConfigurationError):
        reranker(both, engine).rerank("q", ["d"])


@pytest.mark.parametrize("device", ["cuda", "cuda:3", "no-such-device"])
def test_a_device_this_machine_lacks_is_a_configuration_error(
    tiny_cross_encoder: str, device: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # CPU-only, even on a GPU machine
    with pytest.raises(ConfigurationError) as caught:
        TorchCrossEncoder(tiny_cross_encoder, device=device).rerank("q", ["d"])
    assert caught.value.hint
    assert "device" in caught.value.hint


def test_the_fallback_chain_moves_on_past_a_broken_local_model(both: Path, tiny_onnx: str) -> None:
    (both / "model.safetensors").write_bytes(b"truncated")
    chain = load_reranker(
        {
            "provider": "local",
            "model": str(both),
            "options": {"engine": "torch"},
            "fallback": [
                {"provider": "local", "model": str(both), "options": {"engine": "torch", "device": "cuda:9"}},
                {"provider": "local", "model": tiny_onnx, "options": {"engine": "onnx"}},
            ],
        }
    )
    response = chain.rerank("capital of france", ["Paris is the capital of France", "zebra"])
    assert response.model == tiny_onnx
    assert len(response.results) == 2


@pytest.mark.parametrize("engine", ENGINES)
def test_a_huge_document_is_cut_before_tokenizing_and_scores_like_its_start(
    both: Path, engine: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = reranker(both, engine, max_length=64, activation="none")
    page = "the capital of france is paris and the river is the seine. " * 40
    huge = page * 4_000  # ~9.6 MB
    seen: list[int] = []
    backend = model.backend_tokenizer
    encode_batch = backend.encode_batch

    class Spy:
        """Records the length of every text handed to the tokenizer."""

        def __getattr__(self, name: str) -> Any:
            return getattr(backend, name)

        def encode_batch(self, pairs: list[tuple[str, str]]) -> Any:
            seen.extend(len(text) for _, text in pairs)
            return encode_batch(pairs)

        def encode(self, *args: Any, **kwargs: Any) -> Any:
            seen.extend(len(text) for text in args)
            return backend.encode(*args, **kwargs)

    monkeypatch.setattr(model._tokenizer_setup(), "backend", Spy())
    logits = model.predict_logits("capital of france", [huge, page])
    assert max(seen) <= 64 * CHARS_PER_TOKEN, "only a bounded prefix of the 10 MB text was tokenized"
    assert logits[0] == pytest.approx(logits[1], abs=1e-6), "same first 64 tokens, same score"


@pytest.mark.parametrize("engine", ENGINES)
def test_a_cut_that_would_lose_tokens_widens_until_the_window_is_full(both: Path, engine: str) -> None:
    model = reranker(both, engine, max_length=48)
    spaced = "paris" + " " * 5_000 + " capital france river " * 30  # the first cut holds one word only
    long_word = "x" * 3_000 + " the capital of france " * 40  # no whitespace in the first cut at all
    for text in (spaced, long_word, "short text"):
        full = backend_copy(model.backend_tokenizer.to_str())
        full.enable_truncation(48, strategy="only_second")
        want = full.encode("capital", text).ids
        assert model._encode("capital", [text])["input_ids"] == [want]
