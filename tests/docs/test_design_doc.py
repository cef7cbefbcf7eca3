"""docs/design.md's module table names every module of the package."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "chat2api"
DESIGN = ROOT / "docs" / "design.md"


def layout_rows(text: str) -> dict[str, str]:
    """The Layout table: its first cell's name (``api/``, ``cli.py``) → the row's text."""
    section = text.split("## Layout", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, str] = {}
    for line in section.splitlines():
        cells = line.split(" | ", 1)
        name = re.match(r"\| `([^`]+)`", cells[0]) if len(cells) == 2 else None
        if name:
            rows[name.group(1)] = cells[1]
    return rows


def missing_modules(text: str, package: Path) -> list[str]:
    """Modules of ``package`` that no row of the table names (``__init__.py`` files aside)."""
    rows = layout_rows(text)
    missing = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package).as_posix()
        if path.name == "__init__.py":
            continue
        # The row of the deepest package that has one; a package's row names the rest of the path.
        parts = rel.split("/")
        for depth in range(len(parts) - 1, -1, -1):
            key = "".join(f"{p}/" for p in parts[:depth])
            rest = "/".join(parts[depth:])
            if depth == 0 and rest in rows:
                break
            if depth and key in rows and f"`{rest}`" in rows[key]:
                break
        else:
            missing.append(rel)
    return missing


def test_every_module_is_in_the_design_table() -> None:
    """Each module under src/chat2api is named in docs/design.md's Layout table."""
    assert missing_modules(DESIGN.read_text("utf-8"), PACKAGE) == []


def test_a_module_left_out_is_reported(tmp_path: Path) -> None:
    """The check fails on a module the table does not name, nested or top level."""
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "deep").mkdir()
    for name in (
        "cli.py",
        "new.py",
        "api/chat.py",
        "api/extra.py",
        "api/deep/x.py",
        "api/__init__.py",
    ):
        (tmp_path / name).write_text("")
    text = "## Layout\n\n| module | owns |\n| --- | --- |\n| `cli.py` | the CLI |\n"
    text += "| `api/` | `chat.py` (routes), `deep/x.py` (nested) |\n\n## Decisions\n"
    assert missing_modules(text, tmp_path) == ["api/extra.py", "new.py"]
