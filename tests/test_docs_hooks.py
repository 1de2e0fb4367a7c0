"""docs/hooks.md is generated from the hook docstrings and cannot drift; every docstring example is valid Python."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"


def load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_reference", DOCS / "gen_reference.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = load_generator()


def test_hooks_md_is_what_the_generator_writes_from_the_docstrings():
    committed = (DOCS / "hooks.md").read_text(encoding="utf-8")
    assert committed == gen.hooks_markdown(), "docs/hooks.md is out of date: run python docs/gen_reference.py"


def test_every_hook_is_documented_with_when_it_is_called():
    names = list(gen.hook_functions())
    assert len(names) >= 6
    assert set(names) == set(gen.HOOK_CALLED), "add the new hook to HOOK_CALLED in docs/gen_reference.py"
    markdown = gen.hooks_markdown()
    for name in names:
        assert f"\n## {name}\n" in markdown


@pytest.mark.parametrize("name", list(gen.hook_functions()))
def test_each_hook_docstring_has_a_conftest_example_that_is_valid_python(name: str):
    (example,) = gen.hook_examples()[name]
    tree = ast.parse(example, filename=f"{name} docstring example")
    defined = [node.name for node in tree.body if isinstance(node, ast.FunctionDef)]
    assert name in defined, f"the {name} example does not define {name}"
    (implementation,) = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == name]
    spec_parameters = list(gen.inspect.signature(gen.hook_functions()[name]).parameters)
    example_parameters = [argument.arg for argument in implementation.args.args]
    # pluggy passes arguments by name: an implementation may take fewer, never one the hook does not have.
    assert set(example_parameters) <= set(spec_parameters), example_parameters


def test_docstring_code_blocks_become_fenced_markdown():
    docstring = """Summary with ``literal``.

    .. code-block:: python

        def f():
            return 1

    After.
    """
    markdown = gen.rst_to_markdown(docstring)
    assert markdown == "Summary with `literal`.\n\n```python\ndef f():\n    return 1\n```\n\nAfter.\n"
    assert gen.code_blocks(markdown) == ["def f():\n    return 1\n"]


def test_check_mode_names_a_stale_file_and_changes_nothing(tmp_path: Path):
    (tmp_path / "hooks.md").write_text("stale\n", encoding="utf-8")
    (tmp_path / "options.md").write_text(gen.options_markdown(), encoding="utf-8")
    assert gen.stale_files(tmp_path) == ["hooks.md"]
    assert (tmp_path / "hooks.md").read_text(encoding="utf-8") == "stale\n"
