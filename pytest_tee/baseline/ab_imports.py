"""Which code each side of ``pytest-tee ab`` imports: per-side ``PYTHONPATH``, ``--setup``, and the check that
the base side really imports the base revision.

Putting the base checkout first on ``PYTHONPATH`` imports the base code only for a flat layout. With the package
under ``src/`` (or any folder the build configuration names) the base side would find the package wherever the
environment has it — in an editable install, that is the head checkout — and measure the head's code on both
sides. So each side gets the folders its own ``pyproject.toml``/``setup.cfg`` puts packages in (package discovery
of setuptools, hatch, poetry, pdm, flit, maturin; ``src/`` by convention), then its checkout root, then the
inherited ``PYTHONPATH`` with paths into the head checkout moved to the same place in the base checkout.
``PYTHONPATH`` comes before site-packages and before the import hooks that setuptools' editable installs append,
so this is enough for flat layouts, ``src/`` layouts and most editable installs.

An import hook placed *before* ``PYTHONPATH`` (meson-python's and scikit-build-core's editable loaders, a
``sitecustomize``) would still hand the base side the head's code. The probe therefore asks, in each side's own
environment and folder, where each of its top-level packages would be imported from (``importlib.util.find_spec``,
which does not run the package), and ``ab`` refuses when the base side would import code from the head checkout.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_tee.errors import InputError

_SKIPPED_FOLDERS = frozenset({"build", "dist", "site-packages", "node_modules", "__pycache__"})
SETUP_LOG_TAIL = 25
PROBE = """
import importlib.util, json, sys
found = {}
for name in sys.argv[1:]:
    try:
        spec = importlib.util.find_spec(name)
    except Exception:  # a broken package or finder: not ours to judge here
        spec = None
    if spec is None or spec.origin in ("built-in", "frozen"):
        continue
    locations = list(spec.submodule_search_locations or [])
    where = spec.origin if spec.origin else (locations[0] if locations else None)
    if where:
        found[name] = {"path": where, "loader": type(spec.loader).__module__ + "." + type(spec.loader).__name__}
print(json.dumps(found))
"""


@dataclass(frozen=True)
class Origin:
    name: str  # a top-level package or module of the project
    path: Path  # where the side would import it from
    loader: str  # the loader's class, which names an editable install's import hook


def package_roots(checkout: Path) -> list[Path]:
    """The folders this checkout's packages live in, from its build configuration; else ``src/`` when it holds
    a package, else the checkout itself (a flat layout). Only folders that exist.
    """
    configured = _configured_roots(checkout)
    if not configured and _holds_packages(checkout / "src"):
        configured = [checkout / "src"]
    roots = [root for root in configured if root.is_dir()]
    return _unique(roots or [checkout])


def _configured_roots(checkout: Path) -> list[Path]:
    roots: list[str] = []
    pyproject = _toml(checkout / "pyproject.toml")
    tool = pyproject.get("tool", {}) if isinstance(pyproject.get("tool"), dict) else {}
    setuptools = tool.get("setuptools", {})
    if isinstance(setuptools, dict):
        package_dir = setuptools.get("package-dir", {})
        if isinstance(package_dir, dict) and isinstance(package_dir.get(""), str):
            roots.append(package_dir[""])
        packages = setuptools.get("packages", {})
        found = packages.get("find", {}) if isinstance(packages, dict) else {}
        if isinstance(found, dict) and isinstance(found.get("where"), list):
            roots += [where for where in found["where"] if isinstance(where, str)]
    hatch_wheel = _dig(tool, "hatch", "build", "targets", "wheel")
    for packages in (hatch_wheel.get("packages"), _dig(tool, "hatch", "build").get("packages")):
        if isinstance(packages, list):
            roots += [str(Path(path).parent) for path in packages if isinstance(path, str)]
    sources = hatch_wheel.get("sources")
    if isinstance(sources, list):
        roots += [source for source in sources if isinstance(source, str)]
    elif isinstance(sources, dict):
        roots += [source for source, prefix in sources.items() if prefix in ("", None)]
    poetry = _dig(tool, "poetry").get("packages")
    if isinstance(poetry, list):
        roots += [entry.get("from", ".") for entry in poetry if isinstance(entry, dict)]
    pdm_dir = _dig(tool, "pdm", "build").get("package-dir")
    if isinstance(pdm_dir, str):
        roots.append(pdm_dir)
    maturin_source = _dig(tool, "maturin").get("python-source")
    if isinstance(maturin_source, str):
        roots.append(maturin_source)
    roots += _setup_cfg_roots(checkout / "setup.cfg")
    return [(checkout / root).resolve() for root in roots if isinstance(root, str)]


def _setup_cfg_roots(path: Path) -> list[str]:
    import configparser

    if not path.is_file():
        return []
    parser = configparser.ConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError):
        return []
    roots = []
    package_dir = parser.get("options", "package_dir", fallback="")
    for line in package_dir.replace(";", "\n").splitlines():
        key, _, value = line.partition("=")
        if value and not key.strip():
            roots.append(value.strip())
    where = parser.get("options.packages.find", "where", fallback="").strip()
    if where:
        roots.append(where)
    return roots


def _toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(
            f"{path}: not valid TOML ({exc}); pytest-tee ab reads it to find the package folders"
        ) from None


def _dig(table: Mapping[str, Any], *keys: str) -> dict[str, Any]:
    for key in keys:
        value = table.get(key) if isinstance(table, Mapping) else None
        if not isinstance(value, dict):
            return {}
        table = value
    return dict(table)


def _holds_packages(folder: Path) -> bool:
    return folder.is_dir() and any(
        (child / "__init__.py").is_file() or (child.suffix == ".py" and child.is_file()) for child in folder.iterdir()
    )


def _unique(paths: Sequence[Path]) -> list[Path]:
    seen: list[Path] = []
    for path in paths:
        if path not in seen:
            seen.append(path)
    return seen


def import_names(roots: Sequence[Path]) -> list[str]:
    """Top-level packages (folders with ``__init__.py``) and modules in the package folders."""
    names: list[str] = []
    for root in roots:
        for child in sorted(root.iterdir()):
            if child.name.startswith((".", "_")) or child.name in _SKIPPED_FOLDERS:
                continue
            if child.is_dir() and (child / "__init__.py").is_file() and child.name.isidentifier():
                names.append(child.name)
            elif child.suffix == ".py" and child.stem.isidentifier() and child.is_file():
                names.append(child.stem)
    return list(dict.fromkeys(names))


def side_pythonpath(checkout: Path, inherited: str, *, head_root: Path) -> str:
    """``PYTHONPATH`` for one side: its package folders, its checkout, then the inherited entries — those that
    point into the head checkout moved to the same place in this checkout (a no-op for the head itself).
    """
    entries = [str(root) for root in package_roots(checkout)] + [str(checkout)]
    for entry in filter(None, inherited.split(os.pathsep)):
        path = Path(entry).resolve()
        if path == head_root or head_root in path.parents:
            entries.append(str(checkout / path.relative_to(head_root)))
        else:
            entries.append(entry)
    return os.pathsep.join(dict.fromkeys(entries))


def interpreter(checkout: Path, python: str | None) -> str:
    """The interpreter for this side's sessions: ``--python`` (relative paths inside the checkout) or this one."""
    if python is None:
        return sys.executable
    path = Path(python).expanduser()
    resolved = path if path.is_absolute() else checkout / path
    if not resolved.is_file():
        raise InputError(
            f"--python {python!r}: no interpreter at {resolved} (a relative path is taken inside each checkout, "
            "e.g. .venv/bin/python created by --setup)"
        )
    return str(resolved)


def run_setup(command: str, checkout: Path, environment: Mapping[str, str], label: str, log: Path) -> None:
    """``--setup``: run ``command`` by the shell in ``checkout``; refuse with the end of its output if it fails."""
    with log.open("w", encoding="utf-8") as output:
        result = subprocess.run(
            command, shell=True, cwd=checkout, env=dict(environment), stdout=output, stderr=subprocess.STDOUT
        )
    if result.returncode != 0:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()[-SETUP_LOG_TAIL:]
        raise InputError(
            f"--setup {shlex.quote(command)} failed in {label} (exit {result.returncode}); the end of its output:\n"
            + "\n".join(lines)
        )


def probe(python: str, cwd: Path, environment: Mapping[str, str], names: Sequence[str]) -> list[Origin]:
    """Where ``python``, started in ``cwd`` with ``environment`` as a session would be, imports each name from."""
    if not names:
        return []
    result = subprocess.run(
        [python, "-c", PROBE, *names], cwd=cwd, env=dict(environment), capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise InputError(f"{python} could not run the import check in {cwd}: {result.stderr.strip()[-2000:]}")
    try:
        found = json.loads(result.stdout.strip().splitlines()[-1])
    except (json.JSONDecodeError, IndexError):
        raise InputError(f"{python}: the import check printed no result in {cwd}") from None
    return [Origin(name, Path(entry["path"]).resolve(), entry["loader"]) for name, entry in found.items()]


def crossed(origins: Sequence[Origin], *, base_root: Path, head_root: Path) -> list[Origin]:
    """The base side's imports that would come from the head checkout (not from the base's own)."""
    base_root, head_root = base_root.resolve(), head_root.resolve()

    def inside(path: Path, root: Path) -> bool:
        return path == root or root in path.parents

    return [origin for origin in origins if inside(origin.path, head_root) and not inside(origin.path, base_root)]


def refusal(crossings: Sequence[Origin], head_root: Path) -> str:
    """Why ``ab`` will not run, and what to pass instead."""
    lines = "\n".join(f"  {origin.name} from {origin.path} (loader {origin.loader})" for origin in crossings)
    hooks = any("editable" in origin.loader.lower() or "_finder" in origin.loader for origin in crossings)
    why = (
        "an editable install's import hook comes before PYTHONPATH"
        if hooks
        else "something in the environment (an editable install's .pth or hook, sitecustomize, a path file) puts "
        "the head checkout ahead of the base's folders"
    )
    return (
        f"the base side would import the head's code from {head_root}, so both sides would measure the same code:\n"
        f"{lines}\n({why}.) Give each side its own environment, for example\n"
        "  pytest-tee ab --base REV --setup 'python -m venv .venv && .venv/bin/pip install -e .' "
        "--python .venv/bin/python -- …\n"
        "or install the project without -e (pip install .) so that each checkout's own folders are imported."
    )
