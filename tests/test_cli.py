"""The `fogcore` command: --version and info, in-process and as a real subprocess."""

import json
import os
import subprocess
import sys
import tempfile

import pytest

import fogcore
from fogcore._impl import NO_EXTENSIONS
from fogcore.cli import main


def run_cli(*args, env_extra=None):
    """Run `python -m fogcore` outside the source tree, so the installed package is used."""
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run(
        [sys.executable, "-P", "-m", "fogcore", *args],
        capture_output=True, text=True, timeout=60, env=env, check=False,
        cwd=tempfile.gettempdir(),
    )


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"fogcore {fogcore.__version__}"


def test_info_json_reports_mode_and_libsodium():
    proc = run_cli("info", "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["fogcore"] == fogcore.__version__
    assert info["uvloop"]["available"] is True
    if NO_EXTENSIONS:
        assert info["mode"] == "pure"
    else:
        assert info["mode"] == "compiled", info["mode_reason"]
        assert info["libsodium"]["version"]
        assert os.path.exists(info["libsodium"]["path"])


def test_info_text(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"fogcore {fogcore.__version__}")
    assert "libsodium:" in out and "mode:" in out


def test_pure_mode_switch():
    proc = run_cli("info", "--json", env_extra={"FOGCORE_NO_EXTENSIONS": "1"})
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["mode"] == "pure"
    assert "FOGCORE_NO_EXTENSIONS" in info["mode_reason"]


def test_missing_libsodium_symbol_fails_loudly():
    if NO_EXTENSIONS:
        pytest.skip("pure-Python mode loads no library")
    # A real shared library that lacks every libsodium symbol: the C library itself.
    proc = run_cli("info", env_extra={"FOGCORE_LIBSODIUM": "libc.so.6"})
    assert proc.returncode != 0
    assert "has no symbol crypto_scalarmult" in proc.stderr


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_extension_list_matches_sources():
    import pathlib

    from fogcore._impl import EXTENSION_MODULES

    ext_dir = pathlib.Path(__file__).resolve().parent.parent / "fogcore" / "_ext"
    assert sorted(p.stem for p in ext_dir.glob("*.pyx")) == sorted(EXTENSION_MODULES)
