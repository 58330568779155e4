"""Release metadata: one version (VERSION) everywhere, compatible ranges between the packages, the license in
every package. The build itself (wheels, sdists, twine, a clean install) is checked by scripts/release.sh."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["rerank-core", "rerank-langchain", "rerank-llamaindex", "rerank-haystack"]
VERSION = (ROOT / "VERSION").read_text().strip()


def project(name: str) -> dict[str, Any]:
    data: dict[str, Any] = tomllib.loads((ROOT / "packages" / name / "pyproject.toml").read_text())
    return data["project"]  # type: ignore[no-any-return]


def set_version_module() -> Any:
    spec = importlib.util.spec_from_file_location("set_version", ROOT / "scripts" / "set_version.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", PACKAGES)
def test_every_package_has_the_one_version_and_full_metadata(name: str) -> None:
    meta = project(name)
    assert meta["version"] == VERSION
    assert meta["license"] == "Apache-2.0"
    assert meta["license-files"] == ["LICENSE"]
    assert (ROOT / "packages" / name / "LICENSE").read_text() == (ROOT / "LICENSE").read_text()
    assert {"Homepage", "Source", "Issues", "Changelog"} <= set(meta["urls"])
    assert any(c.startswith("Programming Language :: Python :: 3.11") for c in meta["classifiers"])
    assert meta["authors"]
    readme = (ROOT / "packages" / name / meta["readme"]).read_text()
    assert len(readme) > 500
    assert "pip install" in readme


@pytest.mark.parametrize("name", PACKAGES)
def test_sibling_requirements_use_the_compatible_range(name: str) -> None:
    bounds = set_version_module().compatible_range(VERSION)
    meta = project(name)
    requirements = list(meta.get("dependencies", []))
    for extra in meta.get("optional-dependencies", {}).values():
        requirements += extra
    siblings = [r for r in requirements if re.match(r"rerank-(core|langchain|llamaindex|haystack)\b", r)]
    for requirement in siblings:
        if requirement.startswith(f"{name}["):
            continue  # the "all" extra refers to the package itself
        assert requirement.endswith(bounds), requirement
    if name != "rerank-core":
        assert f"rerank-core{bounds}" in requirements


def test_compatible_ranges() -> None:
    compatible_range = set_version_module().compatible_range
    assert compatible_range("0.2.0") == ">=0.2,<0.3"
    assert compatible_range("0.10.3") == ">=0.10,<0.11"
    assert compatible_range("1.4.2") == ">=1.4,<2"


def test_the_license_is_apache_2() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text
    assert "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_the_changelog_has_this_version() -> None:
    assert f"## [{VERSION}]" in (ROOT / "CHANGELOG.md").read_text()


def test_the_installed_core_reports_the_version() -> None:
    import rerank_core

    assert rerank_core.__version__ == VERSION  # stale? re-install: pip install -e packages/rerank-core
