"""The README's "Repository layout" table is the rule for what each part of ``lipsync/`` may import: held to the code here.

Each row names a part (a module or a folder of ``lipsync/``) and the parts it may import. Imports are read from the
source with ``ast`` (module level and inside functions alike); ``__main__.py`` files, which only start the command
line, are left out.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ENGINE = REPO / "lipsync"
ROW = re.compile(r"^\| `(?P<part>[\w.]+/?)` \| .* \| (?P<allowed>[^|]+) \|$")


def layout_rules() -> dict[str, set[str] | None]:
    """Part name (``media``, ``engine``) -> the parts it may import (``None``: everything)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Repository layout") :]
    section = section[: section.index("\n## ", 1)] if "\n## " in section[1:] else section
    rules: dict[str, set[str] | None] = {}
    for line in section.splitlines():
        match = ROW.match(line.strip())
        if match is None or match["part"] == "part":
            continue
        part = match["part"].removesuffix("/").removesuffix(".py")
        allowed = match["allowed"].strip()
        rules[part] = None if allowed == "everything" else {name.removesuffix(".py") for name in re.findall(r"`([\w.]+)`", allowed)}
    return rules


def parts_imported(path: Path, source: str | None = None) -> set[str]:
    """The ``lipsync`` parts that the module at ``path`` (or ``source`` placed there) imports, relatively or absolutely."""
    package = list(path.relative_to(REPO).with_suffix("").parts[:-1])  # ["lipsync", "faces"]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source if source is not None else path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                target = package[: len(package) - (node.level - 1)] + (node.module.split(".") if node.module else [])
                names = [alias.name for alias in node.names] if target == ["lipsync"] else []
            elif node.module and node.module.split(".")[0] == "lipsync":
                target, names = node.module.split("."), [alias.name for alias in node.names]
            else:
                continue
            found.update(names if len(target) == 1 else [target[1]])
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[1] for alias in node.names if alias.name.startswith("lipsync."))
    return found


def part_of(path: Path) -> str:
    relative = path.relative_to(ENGINE)
    return relative.parts[0].removesuffix(".py")


def engine_files() -> list[Path]:
    return sorted(path for path in ENGINE.rglob("*.py") if path.name != "__main__.py" and path != ENGINE / "__init__.py")


def test_every_part_of_the_engine_has_a_row_and_every_row_a_part() -> None:
    rules = layout_rules()
    parts = {part_of(path) for path in engine_files()}
    assert parts - rules.keys() == set(), "parts of lipsync/ missing from the README's layout table"
    assert rules.keys() - parts == set(), "rows of the README's layout table that name no part of lipsync/"


@pytest.mark.parametrize("path", engine_files(), ids=lambda path: str(path.relative_to(ENGINE)))
def test_imports_follow_the_layout(path: Path) -> None:
    rules = layout_rules()
    part = part_of(path)
    allowed = rules[part]
    if allowed is None:
        return
    outside = parts_imported(path) - allowed - {part}
    assert outside == set(), f"{path.relative_to(REPO)} imports {sorted(outside)}, which the README's layout does not allow {part!r}"


def test_the_rule_reader_sees_a_forbidden_import() -> None:
    """The check above can fail: an upward import, relative or absolute, placed in a media module is found."""
    module = ENGINE / "media" / "read.py"
    text = module.read_text(encoding="utf-8")
    for line in ("from ..pipeline import lipsync_file", "from lipsync.engine import lipsync_chunk", "from .. import cli"):
        found = parts_imported(module, text + "\n" + line + "\n") - layout_rules()["media"] - {"media"}
        assert len(found) == 1, line
