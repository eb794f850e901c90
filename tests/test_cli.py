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


# -- the error boundary: exit codes, signals and pipes, through real processes -----------


def test_closed_pipe_is_silent():
    # The reader end is closed before the command writes: its write meets EPIPE.
    proc = subprocess.Popen([sys.executable, "-P", "-m", "fogcore", "info", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            cwd=tempfile.gettempdir())
    proc.stdout.close()
    try:
        err = proc.stderr.read()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert err == b""
    assert proc.returncode == 141


def test_ctrl_c_exits_130_without_traceback(tmp_path):
    import signal
    import socket

    # A "testnet" whose API accepts connections and never answers: `ping` waits on it.
    with socket.socket() as api:
        api.bind(("127.0.0.1", 0))
        api.listen(8)
        api.settimeout(60)
        (tmp_path / "testnet.json").write_text(json.dumps(
            {"pid": 0, "api": f"http://127.0.0.1:{api.getsockname()[1]}",
             "format": "sphinx"}))
        proc = subprocess.Popen([sys.executable, "-P", "-m", "fogcore", "ping", "--data",
                                 str(tmp_path)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, cwd=tempfile.gettempdir())
        try:
            conn, _ = api.accept()  # the command is now waiting for the directory
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
            conn.close()
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err


def test_command_error_is_one_line():
    proc = run_cli("admin", "create", "root", "--password-stdin", "--database",
                   "mysql://user:secret@127.0.0.1/x", env_extra={"FOG_ADMIN_PASSWORD": ""})
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("fogcore admin: "), proc.stderr
    assert "secret" not in proc.stderr and "user:***@127.0.0.1" in proc.stderr


def test_log_level_takes_choices():
    for command in ("serve", "node"):
        proc = run_cli(command, "--log-level", "loud")
        assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_display_url_hides_the_password():
    from fogcore.cli import display_url

    assert display_url("postgresql://u:pw@h:5432/db") == "postgresql://u:***@h:5432/db"
    assert display_url("sqlite:///tmp/x.db") == "sqlite:///tmp/x.db"


def test_check_writable(tmp_path):
    from fogcore.cli import CommandError, check_writable

    check_writable(str(tmp_path / "out.json"))
    assert not list(tmp_path.iterdir())  # the probe leaves nothing behind
    with pytest.raises(CommandError, match="cannot write the output .*missing"):
        check_writable(str(tmp_path / "missing" / "out.json"))
    with pytest.raises(CommandError, match="is a directory"):
        check_writable(str(tmp_path))


# -- fogcore bench: a table, the JSON on request, what it needs checked first ------------


def test_bench_prints_a_table_and_writes_json(tmp_path):
    result = tmp_path / "core.json"
    proc = run_cli("bench", "core", "--quick", "--json", str(result))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:3] == ["result", "ops_per_s", "median_us"]
    assert any(line.startswith("sphinx.process ") for line in lines)
    assert lines[-1] == f"result document: {result}"
    document = json.loads(result.read_text())
    assert document["suite"] == "core" and "sphinx.process" in document["results"]


def test_bench_checks_what_it_needs_before_it_starts(tmp_path):
    proc = run_cli("bench", "core", "--quick", "--json", str(tmp_path / "no" / "out.json"))
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"fogcore bench: cannot write the result file "
                                   f"{tmp_path / 'no' / 'out.json'}: No such file or directory")
    # Without wrk on PATH the api suite refuses at once (no progress line was printed).
    proc = run_cli("bench", "api", "--quick",
                   env_extra={"PATH": os.path.dirname(sys.executable)})
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "fogcore bench: the api suite needs `wrk` on PATH (Debian package `wrk`)"]


def test_bench_table_format():
    from fogcore.bench.commands import format_table

    table = format_table({"a.long.name": {"ops_per_s": 12.5, "p99_ms": 3},
                          "b": {"ops_per_s": 1000.0}, "settings": {"seconds": 2}})
    assert table.splitlines() == ["result       ops_per_s  p99_ms",
                                  "a.long.name       12.5       3",
                                  "b                 1000"]
    assert format_table({"big": {"ops_per_s": 1508707.5}}).splitlines()[1] == "big       1508708"


def test_unusable_path_is_one_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    proc = run_cli("up", "--data", str(blocker / "testnet"), "--port", "0")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"fogcore up: {blocker / 'testnet'}: Not a directory"], proc.stderr


@pytest.mark.parametrize("raised, status, line", [
    (KeyboardInterrupt(), 130, ""),
    (BrokenPipeError(), 141, None),
    (OSError(13, "Permission denied", "/data/x"), 1, "fogcore boom: /data/x: Permission denied"),
])
def test_error_boundary_in_process(monkeypatch, capsys, raised, status, line):
    from fogcore import cli

    def boom(args):
        raise raised

    monkeypatch.setitem(cli.COMMANDS, "boom", ("raise", lambda parser: None, boom))
    if isinstance(raised, BrokenPipeError):
        monkeypatch.setattr(cli, "_silence_stdout", lambda: None)  # keep pytest's stdout
    assert cli.main(["boom"]) == status
    err = capsys.readouterr().err
    if line is not None:
        assert err.strip() == line
    assert "Traceback" not in err


def test_command_error_code(monkeypatch, capsys):
    from fogcore import cli

    def refuse(args):
        raise cli.CommandError("database sqlite:///x: unsupported", 2)

    monkeypatch.setitem(cli.COMMANDS, "refuse", ("refuse", lambda parser: None, refuse))
    assert cli.main(["refuse"]) == 2
    assert capsys.readouterr().err == "fogcore refuse: database sqlite:///x: unsupported\n"
