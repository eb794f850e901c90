"""`fogcore node --config FILE` runs a node until SIGTERM and stops cleanly."""

import json
import signal
import subprocess
import sys


def test_node_command_runs_and_stops(tmp_path):
    conf = tmp_path / "node.toml"
    conf.write_text(f"""
[node]
listen_port = 0
keys_file = "{tmp_path / 'keys.json'}"
arena_slots = 64
replay_capacity = 1000
""")
    proc = subprocess.Popen([sys.executable, "-P", "-m", "fogcore", "node", "--config", str(conf),
                             "--log-level", "warning"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = json.loads(proc.stdout.readline())
        assert first["event"] == "listening" and first["port"] > 0
        assert len(bytes.fromhex(first["node_id"])) == 32
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    last = json.loads(out.strip().splitlines()[-1])
    assert last["event"] == "stopped" and last["stats"]["frames_in"] == 0
    assert (tmp_path / "keys.json").exists()


def test_node_command_bad_config(tmp_path):
    conf = tmp_path / "node.toml"
    conf.write_text("[node]\nlayer = 'nowhere'\n")
    proc = subprocess.run([sys.executable, "-P", "-m", "fogcore", "node", "--config", str(conf)],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "layer" in proc.stderr


def _env(**extra) -> dict:
    """The test's environment without node variables, plus `extra`."""
    import os

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("FOG_NODE_", "FOGCORE_NODE_"))}
    return dict(env, **extra)


def _node(*args, env_extra=None, **kwargs):
    env = _env(**(env_extra or {}))
    return subprocess.run([sys.executable, "-P", "-m", "fogcore", "node", *args],
                          capture_output=True, text=True, timeout=60, env=env, **kwargs)


def test_check_config_prints_the_effective_settings(tmp_path):
    conf = tmp_path / "node.toml"
    conf.write_text(f"[node]\nkeys_file = \"{tmp_path / 'keys.json'}\"\n")
    proc = _node("--config", str(conf), "--check-config",
                 env_extra={"FOG_NODE_MEAN_DELAY_MS": "7", "FOG_NODE_DIRECTORY_KEY": "s3"})
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)
    assert shown["event"] == "config_ok"
    assert shown["config"]["mean_delay_ms"] == 7.0
    assert shown["config"]["directory_key"] == "***" and "s3" not in proc.stdout
    assert not (tmp_path / "keys.json").exists()  # checking creates nothing


def test_check_config_reports_problems(tmp_path):
    bad_keys = tmp_path / "keys.json"
    bad_keys.write_text("not json")
    conf = tmp_path / "node.toml"
    conf.write_text(f"[node]\nkeys_file = \"{bad_keys}\"\n")
    proc = _node("--config", str(conf), "--check-config")
    assert proc.returncode == 2 and "keys_file" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = _node("--config", str(tmp_path / "absent.toml"), "--check-config")
    assert proc.returncode == 2 and "absent.toml" in proc.stderr
    proc = _node("--check-config", env_extra={"FOG_NODE_LAYER": "core"})
    assert proc.returncode == 2 and "layer" in proc.stderr


def test_deprecated_prefix_still_works_with_a_warning():
    proc = _node("--check-config", env_extra={"FOGCORE_NODE_MEAN_DELAY_MS": "9"})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["config"]["mean_delay_ms"] == 9.0
    assert proc.stderr.strip() == ("fogcore node: warning: FOGCORE_NODE_MEAN_DELAY_MS is "
                                   "deprecated; use FOG_NODE_MEAN_DELAY_MS")
    both = _node("--check-config", env_extra={"FOGCORE_NODE_MEAN_DELAY_MS": "9",
                                              "FOG_NODE_MEAN_DELAY_MS": "3"})
    assert json.loads(both.stdout)["config"]["mean_delay_ms"] == 3.0
    assert "ignored" in both.stderr


def test_sighup_makes_the_node_leave(tmp_path):
    proc = subprocess.Popen([sys.executable, "-P", "-m", "fogcore", "node", "--log-level",
                             "warning"],
                            env=_env(FOG_NODE_LEAVE_GRACE_S="0", FOG_NODE_ARENA_SLOTS="64"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert json.loads(proc.stdout.readline())["event"] == "listening"
        proc.send_signal(signal.SIGHUP)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert json.loads(out.strip().splitlines()[-1])["event"] == "stopped"


def test_example_config_and_unit_are_valid(tmp_path):
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    example = root / "docs" / "examples" / "node.toml"
    proc = _node("--config", str(example), "--check-config",
                 env_extra={"FOG_NODE_KEYS_FILE": str(tmp_path / "keys.json")})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["config"]["layer"] == "mix"
    unit = (root / "docker" / "fogcore-node.service").read_text()
    assert "--check-config" in unit and "KillSignal=SIGTERM" in unit
