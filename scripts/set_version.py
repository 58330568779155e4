"""Set the suite's version: `python scripts/set_version.py 0.3.0` (no argument: re-apply the one in VERSION).

The four packages are released together under one version, kept in `VERSION` at the repository root. This
script writes it into every `packages/*/pyproject.toml` (each sdist stays self-contained, so the value is copied,
not referenced) together with the ranges by which the packages require each other: `rerank-core>=0.2,<0.3` for a
0.x version (a minor release may break), `>=1.4,<2` from 1.0 on. `tests/composition/test_release_metadata.py`
fails if anything drifts from `VERSION`.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("rerank-core", "rerank-langchain", "rerank-llamaindex", "rerank-haystack")
VERSION_LINE = re.compile(r'^version = "[^"]*"$', re.M)
SIBLING = re.compile(
    r'"(?P<name>rerank-(?:core|langchain|llamaindex|haystack))(?P<extras>\[[^\]]*\])?(?:[<>=!~][^" ]*)?"'
)
"""A quoted requirement on a sibling: the name, optional extras, an optional specifier, nothing else."""


def compatible_range(version: str) -> str:
    major, minor = (int(part) for part in version.split(".")[:2])
    upper = f"{major}.{minor + 1}" if major == 0 else str(major + 1)
    return f">={major}.{minor},<{upper}"


def pin(match: re.Match[str], own: str, bounds: str) -> str:
    if match["name"] == own:
        return match[0]
    return f'"{match["name"]}{match["extras"] or ""}{bounds}"'


def apply(version: str) -> list[Path]:
    if not re.fullmatch(r"\d+\.\d+\.\d+(?:(?:a|b|rc)\d+)?", version):
        raise SystemExit(f"not a release version: {version!r} (use X.Y.Z, optionally with aN/bN/rcN)")
    bounds = compatible_range(version)
    changed = []
    for name in PACKAGES:
        path = ROOT / "packages" / name / "pyproject.toml"
        text = path.read_text()
        new = VERSION_LINE.sub(f'version = "{version}"', text, count=1)
        # Requirements on sibling packages, but never a package's self-reference inside its own extras ("all").
        new = SIBLING.sub(lambda m, own=name: pin(m, own, bounds), new)
        if new != text:
            path.write_text(new)
            changed.append(path)
    (ROOT / "VERSION").write_text(version + "\n")
    return changed


def main(argv: list[str]) -> int:
    version = argv[0] if argv else (ROOT / "VERSION").read_text().strip()
    for path in apply(version):
        print(f"updated {path.relative_to(ROOT)}")
    print(f"version {version}, sibling ranges {compatible_range(version)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
