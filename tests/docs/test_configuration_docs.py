"""docs/configuration.md: every TOML, YAML and JSON example is a valid config that uses every setting it sets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rerank_core import RerankerConfig

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "configuration.md").read_text()
FENCE = re.compile(r"```(?P<lang>toml|yaml)\n(?P<code>.*?)\n```", re.S)
EXAMPLES = [(match["lang"], match["code"]) for match in FENCE.finditer(DOC)]


def test_the_page_has_examples() -> None:
    assert {lang for lang, _ in EXAMPLES} == {"toml", "yaml"}


@pytest.mark.parametrize(("lang", "code"), EXAMPLES, ids=[f"{lang}-{i}" for i, (lang, _) in enumerate(EXAMPLES)])
def test_every_file_example_loads_and_wastes_no_setting(tmp_path: Path, lang: str, code: str) -> None:
    file = tmp_path / f"example.{lang}"
    file.write_text(code)
    config = RerankerConfig.load(file)
    config.check_used()
    assert config.provider
