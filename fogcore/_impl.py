"""Choice between the compiled extension modules and the pure-Python reference.

`FOGCORE_NO_EXTENSIONS=1` selects the pure-Python code. Without it the compiled modules are
used; when they are not built (a source checkout, an unsupported platform) fogcore falls back
to pure Python with a warning. A compiled module that is present but cannot load (for
example a libsodium lacking a symbol) is an error, never a silent fallback.
"""

import importlib
import os
import warnings
from types import ModuleType

__all__ = [
    "EXTENSION_MODULES",
    "NO_EXTENSIONS",
    "FogcoreFallbackWarning",
    "compiled",
    "compiled_available",
]

#: Every compiled module a full build has (fogcore/_ext/*.pyx); the tests check the list.
EXTENSION_MODULES = (
    "_batch", "_delays", "_frames", "_hop", "_kem", "_mem", "_replay", "_sodium", "_sphinx",
    "_vrf",
)

NO_EXTENSIONS = os.environ.get("FOGCORE_NO_EXTENSIONS", "") not in ("", "0")


class FogcoreFallbackWarning(UserWarning):
    """The compiled extensions are missing; the pure-Python reference is in use."""


_warned = False


def compiled_available(name: str) -> ModuleType | None:
    """Import `fogcore._ext.<name>`; None when the extensions were not built."""
    try:
        return importlib.import_module(f"fogcore._ext.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"fogcore._ext.{name}":
            raise
        return None


def compiled(name: str) -> ModuleType | None:
    """The compiled module to use for `name`, or None when pure Python is selected."""
    global _warned
    if NO_EXTENSIONS:
        return None
    module = compiled_available(name)
    if module is None and not _warned:
        _warned = True
        warnings.warn(
            "fogcore's compiled extensions are not built; using the slow pure-Python "
            "reference (reinstall with `pip install .` to compile them)",
            FogcoreFallbackWarning,
            stacklevel=3,
        )
    return module
