"""docs/configuration.md's settings table is generated from ``Settings`` and kept current."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import Field

from chat2api.configdoc import DOC, END, START, UndocumentedSetting, main, render_table, updated
from chat2api.settings import Settings


def test_the_doc_matches_the_code() -> None:
    """The table in docs/configuration.md is what ``Settings`` renders today."""
    current = DOC.read_text("utf-8")
    assert updated(current) == current, "stale: run python -m chat2api.configdoc"


def test_every_setting_has_a_row() -> None:
    """Each field's environment name and description appear in the doc, once."""
    table = DOC.read_text("utf-8").split(START)[1].split(END)[0]
    for field in Settings.model_fields.values():
        assert table.count(f"| `{field.alias}` |") == 1, field.alias
    assert "| `CHATGPT_BASE_URL` | `https://chatgpt.com` | Upstream base URL;" in table
    assert "| `RETRY_TIMES` | `3` |" in table
    assert "| `HISTORY_DISABLED` | `true` |" in table
    assert "| `UPSTREAM_TIMEOUT` | `120` |" in table  # a float default shown as given
    assert "| `REDIS_URL` | — |" in table


class _Documented(Settings):
    extra_knob: str = Field("a|b", alias="EXTRA_KNOB", description="One\nknob | two.")


class _Undocumented(Settings):
    silent_knob: int = Field(1, alias="SILENT_KNOB")


def test_a_new_setting_needs_a_description() -> None:
    """A field without ``description=`` cannot be rendered: the doc test fails on it."""
    with pytest.raises(UndocumentedSetting, match="silent_knob"):
        render_table(_Undocumented)


def test_a_new_setting_makes_the_doc_stale(tmp_path: Path) -> None:
    """A documented new field is a new row, escaped for Markdown; --check says the doc is stale."""
    assert "| `EXTRA_KNOB` | `a\\|b` | One knob \\| two. |" in render_table(_Documented)
    assert "EXTRA_KNOB" not in render_table()
    doc = tmp_path / "configuration.md"
    doc.write_text(f"# x\n\n{START}\n| old |\n{END}\n\ntail\n", "utf-8")
    assert main(["--check"], doc) == 1
    assert main([], doc) == 0
    assert main(["--check"], doc) == 0
    text = doc.read_text("utf-8")
    assert text.startswith(f"# x\n\n{START}\n| variable | default | meaning |")
    assert text.endswith(f"{END}\n\ntail\n") and "| old |" not in text


def test_the_readme_names_only_real_settings() -> None:
    """The README's short settings table lists variables that ``Settings`` has."""
    readme = (DOC.parents[1] / "README.md").read_text("utf-8")
    section = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    named = re.findall(r"^\| `([A-Z_]+)` \|", section, flags=re.M)
    aliases = {field.alias for field in Settings.model_fields.values()}
    assert named and set(named) <= aliases, set(named) - aliases
