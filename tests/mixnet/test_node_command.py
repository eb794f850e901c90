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
