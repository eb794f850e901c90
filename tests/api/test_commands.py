"""`fogcore admin create` and `fogcore serve` as a user runs them."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

PASSWORD = "a long enough password"


def fogcore(*args, **kwargs):
    return subprocess.run([sys.executable, "-P", "-m", "fogcore", *args], capture_output=True,
                          text=True, timeout=60, **kwargs)


def test_admin_create_and_serve(tmp_path):
    url = f"sqlite://{tmp_path / 'cli.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOG_")}
    env["FOG_DATA_DIR"] = str(tmp_path)
    short = fogcore("admin", "create", "root", "--password-stdin", "--database", url,
                    input="short\n", env=env)
    assert short.returncode == 2 and "at least" in short.stderr
    made = fogcore("admin", "create", "root", "--password-stdin", "--database", url,
                   input=PASSWORD + "\n", env=env)
    assert made.returncode == 0, made.stderr
    again = fogcore("admin", "create", "root", "--password-stdin", "--database", url,
                    input=PASSWORD + "\n", env=env)
    assert again.returncode == 1
    no_tty = fogcore("admin", "create", "other", "--database", url, input="", env=env)
    assert no_tty.returncode != 0 and "no password" in no_tty.stderr

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-P", "-m", "fogcore", "serve", "--port", str(port), "--database", url],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                with urllib.request.urlopen(base + "/health/ready", timeout=1) as r:
                    assert json.loads(r.read())["status"] == "ready"
                    break
            except OSError:
                time.sleep(0.05)
        else:
            raise AssertionError("fogcore serve did not become ready")
        login = urllib.request.Request(
            base + "/api/auth/login",
            data=json.dumps({"username": "root", "password": PASSWORD}).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(login, timeout=5) as r:
            assert json.loads(r.read())["user"]["role"] == "admin"
    finally:
        server.terminate()
        _, err = server.communicate(timeout=20)
    # Structured logs: every line on stderr is a JSON object; the access log has the login.
    assert b"\x1b" not in err  # no terminal colours in JSON logs
    lines = [json.loads(line) for line in err.decode().splitlines() if line.strip()]
    assert not any("color_message" in e for e in lines)
    assert any(e.get("route") == "/api/auth/login" and e.get("status") == 200 for e in lines)
    assert all("password" not in json.dumps(e) or e.get("logger") != "fogcore.api.access"
               for e in lines)


def test_json_formatter_drops_terminal_colours():
    import logging

    from fogcore.api.logs import JsonFormatter

    record = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1,
                               "Started server process [\x1b[36m%d\x1b[0m]", (42,), None)
    record.color_message = "Started server process [\x1b[36m%d\x1b[0m]"
    entry = json.loads(JsonFormatter().format(record))
    assert entry["msg"] == "Started server process [42]"
    assert "color_message" not in entry


def test_admin_create_finds_the_running_testnet(tmp_path):
    import asyncio

    from fogcore.mixnet.testnet import database_url
    from fogcore.store import open_store

    env = {k: v for k, v in os.environ.items() if not k.startswith("FOG_")}
    env["FOG_DATA_DIR"] = str(tmp_path)
    testnet_dir = tmp_path / "testnet"
    testnet_dir.mkdir()
    # A live pid in the state file is what marks a testnet as running: this test's own.
    (testnet_dir / "testnet.json").write_text(json.dumps(
        {"pid": os.getpid(), "api": "http://127.0.0.1:1", "format": "sphinx"}))
    made = fogcore("admin", "create", "panel", "--password-stdin", input=PASSWORD + "\n",
                   env=env)
    assert made.returncode == 0, made.stderr
    assert "testnet" in made.stderr
    assert not (tmp_path / "fogcore.db").exists()

    async def lookup():
        store = await open_store(database_url(testnet_dir))
        try:
            return await store.users.get_by_username("panel")
        finally:
            await store.close()

    assert asyncio.run(lookup()).role == "admin"
    missing = fogcore("admin", "create", "other", "--password-stdin", "--testnet",
                      str(tmp_path / "nowhere"), input=PASSWORD + "\n", env=env)
    assert missing.returncode == 2 and "no testnet runs" in missing.stderr


def test_serve_refuses_a_busy_port_in_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOG_")}
    env["FOG_DATA_DIR"] = str(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        proc = fogcore("serve", "--port", str(port), env=env)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"fogcore serve: cannot listen on 127.0.0.1:{port}: Address already in use"]
