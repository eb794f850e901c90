"""Every third-party package the installed code imports unconditionally is a declared
dependency of `pip install .` (not only of an extra): the test extras are installed where
the suite runs, so a missing declaration would otherwise show only on a user's machine.
Imports guarded by `except ImportError` are optional and may come from an extra."""

import ast
import importlib.metadata as metadata
import re
import sys
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


def _unconditional_imports() -> dict[str, str]:
    """Top-level module name -> a file importing it, outside ImportError guards."""
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
                if _guarded(node, parents):
                    continue
                for name in names:
                    found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def _base_requirements() -> set[str]:
    """Normalised names of the distribution's requirements outside any extra."""
    names = set()
    for requirement in metadata.requires("fogcore") or ():
        if "extra ==" in requirement:
            continue
        name = re.match(r"[A-Za-z0-9._-]+", requirement).group(0)
        names.add(re.sub(r"[-_.]+", "-", name).lower())
    return names


def test_runtime_imports_are_declared_dependencies():
    distributions = metadata.packages_distributions()
    declared = _base_requirements()
    missing = []
    for module, where in sorted(_unconditional_imports().items()):
        if module in sys.stdlib_module_names or module in FIRST_PARTY:
            continue
        owners = {re.sub(r"[-_.]+", "-", d).lower() for d in distributions.get(module, [])}
        if not owners & declared:
            missing.append(f"{module} (imported by {where}; provided by {sorted(owners) or '?'})")
    assert not missing, "imported but not a dependency of `pip install .`: " + "; ".join(missing)
