"""docs/options.md is generated from pytest_tee.settings.OPTIONS and lists every flag with its variable and ini key."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from pytest_tee.settings import OPTIONS

DOCS = Path(__file__).resolve().parent.parent / "docs"
_spec = importlib.util.spec_from_file_location("gen_reference_for_options", DOCS / "gen_reference.py")
assert _spec is not None
assert _spec.loader is not None
gen = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gen)


def test_options_md_is_what_the_generator_writes_from_the_settings():
    committed = (DOCS / "options.md").read_text(encoding="utf-8")
    assert committed == gen.options_markdown(), "docs/options.md is out of date: run python docs/gen_reference.py"


def test_every_option_has_one_row_with_its_flag_variable_and_ini_key():
    rows = [line for line in gen.options_markdown().splitlines() if line.startswith("| `--tee")]
    assert len(rows) == len(OPTIONS)
    for option, row in zip(OPTIONS, rows, strict=True):
        assert row.startswith(f"| `{option.flag}` |")
        assert f"`{option.env}`" in row
        assert f"`{option.ini}`" in row
        assert "%%" not in row
