"""A real `fogcore up` in a subprocess (its own data directory, free API port, 6 mix nodes
and one gateway) shared by the tests of a module, once per packet format."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

PASSWORD = "testnet tests password 1"


def fogcore(*args: str) -> list[str]:
    """The `fogcore` command line for `args`."""
    return [sys.executable, "-P", "-m", "fogcore", *args]


@dataclass
class Up:
    """A running `fogcore up`."""

    data: Path
    process: subprocess.Popen
    log: Path
    format: str

    @property
    def state(self) -> dict:
        return json.loads((self.data / "testnet.json").read_text())

    @property
    def api(self) -> str:
        return self.state["api"]

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """A client command against this testnet."""
        return subprocess.run(fogcore(*args, "--data", str(self.data)), capture_output=True,
                              text=True, timeout=timeout, env=env())


def env() -> dict:
    out = {k: v for k, v in os.environ.items() if not k.startswith("FOG")}
    out["FOG_ADMIN_PASSWORD"] = PASSWORD
    return out


def start_up(data: Path, fmt: str, nodes: int = 6, gateways: int = 1) -> Up:
    """Start `fogcore up` and wait until its state file appears."""
    log = data.parent / f"up-{fmt}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            fogcore("up", "--data", str(data), "--port", "0", "--nodes", str(nodes),
                    "--gateways", str(gateways), "--format", fmt, "--mean-delay-ms", "5"),
            stdout=out, stderr=subprocess.STDOUT, env=env())
    deadline = time.monotonic() + 60
    while not (data / "testnet.json").exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"fogcore up did not start:\n{log.read_text()[-4000:]}", pytrace=False)
        time.sleep(0.1)
    return Up(data, process, log, fmt)


def stop_up(up: Up) -> int:
    """Ctrl-C and wait; the exit code."""
    up.process.send_signal(signal.SIGINT)
    try:
        return up.process.wait(timeout=40)
    except subprocess.TimeoutExpired:
        up.process.kill()
        up.process.wait()
        raise


@pytest.fixture(scope="module", params=["sphinx", "kem"])
def up(request, tmp_path_factory):
    """A running testnet, once per packet format."""
    work = tmp_path_factory.mktemp(f"testnet-{request.param}")
    running = start_up(work / "data", request.param)
    yield running
    code = stop_up(running)
    assert code == 0, running.log.read_text()[-4000:]
