"""`pip` as the docs test sees it: each `pip install` line of a page is checked, not run.

The test environment already holds every package; what can still be wrong in a doc is the line itself. So each
requirement must name an installed distribution (or a folder of this checkout) and only extras it declares, and
each option must be one pip has. Anything else (`pip uninstall`, an unknown option) fails: such a block needs a
`<!-- not-run: reason -->`.
"""

from __future__ import annotations

import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

FLAGS = {"-q", "--quiet", "-U", "--upgrade", "--no-deps", "--pre"}
WITH_VALUE = {"--index-url", "--extra-index-url", "-c", "--constraint", "-r", "--requirement"}


def declared_extras(requirement: str) -> tuple[str, set[str], set[str]]:
    """(name, extras asked for, extras declared) of one requirement, read from a folder or an installed package."""
    match = re.fullmatch(r"(?P<base>[^\[]+)(?:\[(?P<extras>[^\]]*)\])?", requirement)
    if match and ("/" in match["base"] or match["base"].startswith(".")):
        folder = Path(match["base"])
        project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
        wanted = {str(canonicalize_name(e)) for e in (match["extras"] or "").split(",") if e}
        return project["name"], wanted, {str(canonicalize_name(e)) for e in project.get("optional-dependencies", {})}
    parsed = Requirement(requirement)
    provided = metadata.distribution(parsed.name).metadata.get_all("Provides-Extra") or []
    return (
        parsed.name,
        {str(canonicalize_name(e)) for e in parsed.extras},
        {str(canonicalize_name(e)) for e in provided},
    )


def main(argv: list[str]) -> int:
    if not argv or argv[0] != "install":
        print(f"pip (docs test): only `pip install` lines are checked, not `pip {' '.join(argv)}`", file=sys.stderr)
        return 2
    arguments = iter(argv[1:])
    for argument in arguments:
        if argument in WITH_VALUE:
            next(arguments, None)
            continue
        if argument in FLAGS or argument == "-e":
            continue
        if argument.startswith("-"):
            print(f"pip (docs test): unknown option {argument}", file=sys.stderr)
            return 2
        try:
            name, wanted, declared = declared_extras(argument)
        except (OSError, KeyError, InvalidRequirement, metadata.PackageNotFoundError) as exc:
            print(f"pip (docs test): {argument!r} is neither installed nor a project folder: {exc}", file=sys.stderr)
            return 1
        if not wanted <= declared:
            print(f"pip (docs test): {name} has no extra {sorted(wanted - declared)}", file=sys.stderr)
            return 1
        print(f"pip (docs test): {argument} is installed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
