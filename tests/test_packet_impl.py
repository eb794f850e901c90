"""One way to choose an implementation: `fogcore._impl.implementation(name, impl)`, the
`_x_py` naming of the pure twins, and the packet core importing nothing above it."""

import importlib
import os
import subprocess
import sys

import pytest

from fogcore._impl import (
    EXTENSION_MODULES,
    IMPLS,
    NO_EXTENSIONS,
    PURE_TWINS,
    compiled_available,
    implementation,
)


@pytest.mark.parametrize("name", sorted(PURE_TWINS))
def test_pure_twin_is_named_after_its_compiled_module(name):
    path = PURE_TWINS[name]
    assert name in EXTENSION_MODULES
    assert path.rsplit(".", 1)[1] == f"{name}_py"
    assert implementation(name, "py") is importlib.import_module(path)


@pytest.mark.parametrize("name", sorted(PURE_TWINS))
def test_compiled_choice(name):
    if compiled_available(name) is None:
        with pytest.raises(RuntimeError, match="not built"):
            implementation(name, "c")
        return
    # An explicit "c" is honoured even in pure mode; only the process's choice follows it.
    module = implementation(name, "c")
    assert module.__name__ == f"fogcore._ext.{name}"
    expected = implementation(name, "py") if NO_EXTENSIONS else module
    assert implementation(name) is expected


def test_without_a_twin_pure_means_none():
    assert implementation("_mem", "py") is None  # allocation wrappers: nothing to mirror


@pytest.mark.parametrize(("name", "impl"), [("_nope", None), ("_batch", "rust"), ("_batch", "C")])
def test_bad_choice_is_a_value_error(name, impl):
    with pytest.raises(ValueError):
        implementation(name, impl)


def test_impls():
    assert IMPLS == ("c", "py")


def _run(code: str, **env: str) -> str:
    full = {**os.environ, **env}
    # -P: the installed package, not the source tree of the working directory (which has no
    # built extensions when the package was installed rather than built in place).
    proc = subprocess.run([sys.executable, "-P", "-c", code], capture_output=True, text=True,
                          env=full, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_no_extensions_selects_every_pure_twin():
    out = _run("import fogcore.packet, fogcore.packet.surb, fogcore.crypto, fogcore.vrf, "
               "fogcore.delays, fogcore.replay, fogcore.mixnet.protocol as p, sys;"
               "print(fogcore.packet.IMPLEMENTATION, fogcore.packet.surb.IMPLEMENTATION,"
               " fogcore.crypto.IMPLEMENTATION, fogcore.vrf.IMPLEMENTATION,"
               " fogcore.delays.IMPLEMENTATION, fogcore.replay.IMPLEMENTATION,"
               " p.IMPLEMENTATION, any(m.startswith('fogcore._ext.') for m in sys.modules))",
               FOGCORE_NO_EXTENSIONS="1")
    assert out == "py py py py py py py False"


@pytest.mark.skipif(NO_EXTENSIONS, reason="compiled extensions disabled")
def test_packet_core_imports_nothing_above_it():
    names = ", ".join(f"fogcore._ext.{n}" for n in EXTENSION_MODULES)
    out = _run(f"import sys, {names};"
               "print(sorted(m for m in sys.modules if m.startswith('fogcore.')"
               " and not m.startswith('fogcore._ext')))")
    assert out == "[]"
