"""The one way fogcore chooses between a compiled extension module and its pure-Python twin.

Every compiled module `fogcore._ext._x` that has a pure twin has it in a module named
`_x_py` (PURE_TWINS says where): same functions, same arguments, same bytes.
`implementation(name, impl)` returns one of the two:

- `impl="c"`: the compiled module; an error when it is not built.
- `impl="py"`: the pure twin.
- `impl=None`: the process's choice. `FOGCORE_NO_EXTENSIONS=1` selects the pure twins;
  without it the compiled modules are used, and when they are not built (a source checkout,
  an unsupported platform) fogcore falls back to pure Python with a warning. A compiled
  module that is present but cannot load (for example a libsodium lacking a symbol) is an
  error, never a silent fallback.

A caller that must choose (a test, a node run with the pure core) passes `impl`; everything
else passes nothing.
"""

import importlib
import os
import warnings
from types import ModuleType

__all__ = [
    "EXTENSION_MODULES",
    "IMPLS",
    "NO_EXTENSIONS",
    "PURE_TWINS",
    "FogcoreFallbackWarning",
    "compiled_available",
    "implementation",
]

#: Every compiled module a full build has (fogcore/_ext/*.pyx); the tests check the list.
EXTENSION_MODULES = (
    "_batch", "_delays", "_frames", "_hop", "_kem", "_mem", "_replay", "_sodium", "_sphinx",
    "_vrf",
)

#: compiled module -> its pure-Python twin (`_x` -> `_x_py`); `_mem` (allocation wrappers)
#: has none.
PURE_TWINS = {
    "_batch": "fogcore.packet._batch_py",
    "_delays": "fogcore._delays_py",
    "_frames": "fogcore.mixnet._frames_py",
    "_hop": "fogcore.packet._hop_py",
    "_kem": "fogcore.packet._kem_py",
    "_replay": "fogcore._replay_py",
    "_sodium": "fogcore._sodium_py",
    "_sphinx": "fogcore.packet._sphinx_py",
    "_vrf": "fogcore._vrf_py",
}

#: the values of `impl`: compiled, pure Python
IMPLS = ("c", "py")

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


def _compiled_or_fallback(name: str) -> ModuleType | None:
    global _warned
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


def implementation(name: str, impl: str | None = None) -> ModuleType | None:
    """The module implementing `name` (an entry of EXTENSION_MODULES): the compiled
    `fogcore._ext.<name>` for `impl="c"` (RuntimeError when it is not built), its pure twin
    for `impl="py"`, the process's choice for None. A module without a pure twin gives None
    where pure Python is chosen, so its caller runs its own pure code."""
    if name not in EXTENSION_MODULES:
        raise ValueError(f"no implementation named {name!r}")
    if impl not in (None, *IMPLS):
        raise ValueError(f"impl must be one of {IMPLS} or None, not {impl!r}")
    if impl == "c":
        module = compiled_available(name)
        if module is None:
            raise RuntimeError(f"fogcore._ext.{name} is not built (`pip install .` builds it)")
        return module
    if impl is None and not NO_EXTENSIONS:
        module = _compiled_or_fallback(name)
        if module is not None:
            return module
    twin = PURE_TWINS.get(name)
    return importlib.import_module(twin) if twin is not None else None
