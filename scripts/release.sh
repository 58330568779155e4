#!/usr/bin/env bash
# Build and check the four packages as they would be published:
#   1. wheel + sdist of each package into dist/ (hatchling from the dev venv, no download)
#   2. twine check --strict, and LICENSE inside every wheel and sdist
#   3. a clean venv that installs rerank-core from the built wheel only (its dependencies from the index, pinned by
#      constraints.txt), imports it, checks `rerank --version`, and reranks once against a loopback server
# The framework wheels are checked (metadata, license, version range on rerank-core) but not installed: that would
# download three frameworks for nothing their own test suites do not already cover.
# Usage: bash scripts/release.sh   (after scripts/check.sh has set up .venv); publish with `twine upload dist/*`.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV_PY="${VENV_PY:-.venv/bin/python}"
VERSION="$(cat VERSION)"
CONSTRAINTS=()
[ -f constraints.txt ] && CONSTRAINTS=(-c constraints.txt)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
build_log="$work/build.log"

rm -rf dist
for package in packages/rerank-core packages/rerank-langchain packages/rerank-llamaindex packages/rerank-haystack; do
    "$VENV_PY" -m build --no-isolation --wheel --sdist --outdir dist "$package" > "$build_log" 2>&1 \
        || { cat "$build_log" >&2; exit 1; }
done
"$VENV_PY" -m twine check --strict dist/*

"$VENV_PY" - "$VERSION" <<'PY'
import sys, tarfile, zipfile
from pathlib import Path

version = sys.argv[1]
names = ["rerank_core", "rerank_langchain", "rerank_llamaindex", "rerank_haystack"]
for name in names:
    wheel = Path(f"dist/{name}-{version}-py3-none-any.whl")
    sdist = Path(f"dist/{name}-{version}.tar.gz")
    with zipfile.ZipFile(wheel) as zipped:
        files = zipped.namelist()
        assert f"{name}-{version}.dist-info/licenses/LICENSE" in files, (wheel, "no LICENSE")
        meta = zipped.read(f"{name}-{version}.dist-info/METADATA").decode()
    with tarfile.open(sdist) as tarred:
        assert f"{name}-{version}/LICENSE" in tarred.getnames(), (sdist, "no LICENSE")
    assert "License-Expression: Apache-2.0" in meta, wheel
    if name != "rerank_core":
        minor = ".".join(version.split(".")[:2])
        assert f"Requires-Dist: rerank-core<" in meta and f">={minor}" in meta, (wheel, "rerank-core range")
print(f"dist/: {len(names)} wheels and sdists of {version}, each with LICENSE and metadata checked")
PY

"${PYTHON:-python3}" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q "${CONSTRAINTS[@]}" "dist/rerank_core-$VERSION-py3-none-any.whl"
reported="$("$work/venv/bin/rerank" --version 2>&1)"  # captured first: grep -q closing a pipe early must not fail it
grep -q -F "$VERSION" <<< "$reported" || { echo "rerank --version says '$reported', not $VERSION" >&2; exit 1; }
(cd "$work" && "$work/venv/bin/python" "$OLDPWD/scripts/release_smoke.py" "$OLDPWD/VERSION")
