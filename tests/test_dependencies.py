"""Every third-party package the installed code imports unconditionally is a declared
dependency of `pip install .` (not only of an extra): the test extras are installed where
the suite runs, so a missing declaration would otherwise show only on a user's machine.
Imports guarded by `except ImportError` are optional and may come from an extra.
The converse holds too: every declared dependency is imported somewhere (guarded or not),
for a declaration nothing imports costs every install its download and nothing more.

The declarations are read from pyproject.toml, not from the installed metadata, which an
editable install leaves as it was when it was made."""

import ast
import importlib.metadata as metadata
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCES = [ROOT / "fogcore", ROOT / "api", ROOT / "bench"]
# First-party top-level names: the package itself and its relative imports.
FIRST_PARTY = {"fogcore"}


def _guarded(node: ast.AST, parents: dict) -> bool:
    """True when the import sits in a `try` whose handlers catch ImportError."""
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.Try):
            for handler in node.handlers:
                names = []
                if isinstance(handler.type, ast.Name):
                    names = [handler.type.id]
                elif isinstance(handler.type, ast.Tuple):
                    names = [e.id for e in handler.type.elts if isinstance(e, ast.Name)]
                if {"ImportError", "ModuleNotFoundError"} & set(names):
                    return True
    return False


def _imports(include_guarded: bool = False) -> dict[str, str]:
    """Top-level module name -> a file importing it; outside ImportError guards only unless
    `include_guarded`."""
    found: dict[str, str] = {}
    for source in SOURCES:
        for path in source.rglob("*.py"):
            tree = ast.parse(path.read_text(), str(path))
            parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                    names = [node.module]
                else:
                    continue
                if not include_guarded and _guarded(node, parents):
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def _normalised(name: str) -> str:
    """A distribution name in its canonical form (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _base_requirements() -> set[str]:
    """Normalised names of the project's requirements outside any extra."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {
        _normalised(re.match(r"[A-Za-z0-9._-]+", requirement).group(0))
        for requirement in project["dependencies"]
    }


def test_runtime_imports_are_declared_dependencies():
    distributions = metadata.packages_distributions()
    declared = _base_requirements()
    missing = []
    for module, where in sorted(_imports().items()):
        if module in sys.stdlib_module_names or module in FIRST_PARTY:
            continue
        owners = {_normalised(d) for d in distributions.get(module, [])}
        if not owners & declared:
            missing.append(f"{module} (imported by {where}; provided by {sorted(owners) or '?'})")
    assert not missing, "imported but not a dependency of `pip install .`: " + "; ".join(missing)


def test_declared_dependencies_are_imported():
    imported = set(_imports(include_guarded=True))
    used = {
        _normalised(distribution)
        for module, distributions in metadata.packages_distributions().items()
        if module in imported
        for distribution in distributions
    }
    unused = sorted(_base_requirements() - used)
    assert not unused, "a dependency of `pip install .` that nothing imports: " + ", ".join(unused)
