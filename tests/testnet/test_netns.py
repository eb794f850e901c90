"""A multi-host testnet in network namespaces the test creates: one host for the API and
directory, one for the clients, one per node, all on one bridge inside a hub namespace.
Messages are delivered end to end; then a host carrying one node of every layer is cut off
(`ip link set ... down`) while messages are under way, the directory's prober marks its
nodes unreachable, the clients route around them, and the host comes back.

Addresses come from 10.231.0.0/24 and exist only inside the namespaces (nothing is added
to the host's own network namespace), so no packet leaves them. Every namespace is named
with PREFIX; leftovers of a crashed run are removed first, and everything is removed in a
`finally`. Needs root (CAP_NET_ADMIN): without it the test fails and says so."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from .conftest import env

PREFIX = "fgt-"
HUB = PREFIX + "hub"
SUBNET = "10.231.0"
API_HOST = f"{SUBNET}.2"
CLIENT_HOST = f"{SUBNET}.3"
MIX_NODES = 6  # two per layer
GATEWAYS = 1
ROLES = Path(__file__).with_name("netns_roles.py")

pytestmark = pytest.mark.slow


def ip(*args: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run `ip [-n ns] args`."""
    command = ["ip", *(["-n", ns] if ns else []), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=10)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)}: {result.stderr.strip()}")
    return result


def our_namespaces() -> list[str]:
    out = ip("netns", "list").stdout
    return [line.split()[0] for line in out.splitlines()
            if line.strip() and line.split()[0].startswith(PREFIX)]


def remove_namespaces() -> None:
    """Delete every namespace of ours and end the processes still inside them (only a
    crashed run leaves any); their veth pairs and the bridge go with them."""
    for name in our_namespaces():
        pids = ip("netns", "pids", name, check=False).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        ip("netns", "del", name, check=False)


def add_host(name: str, port: str, address: str) -> None:
    """A namespace `name` whose eth0 has `address`/24 and is a port of the hub bridge."""
    ip("netns", "add", name)
    ip("link", "set", "lo", "up", ns=name)
    ip("link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", name, ns=HUB)
    ip("link", "set", port, "master", "br0", "up", ns=HUB)
    ip("addr", "add", f"{address}/24", "dev", "eth0", ns=name)
    ip("link", "set", "eth0", "up", ns=name)


def build_network(node_namespaces: list[str], node_hosts: list[str]) -> None:
    try:
        ip("netns", "add", HUB)
    except RuntimeError as exc:
        pytest.fail(f"cannot create network namespaces (the multi-host test needs root / "
                    f"CAP_NET_ADMIN and `ip netns`): {exc}", pytrace=False)
    ip("link", "set", "lo", "up", ns=HUB)
    ip("link", "add", "br0", "type", "bridge", ns=HUB)
    ip("link", "set", "br0", "up", ns=HUB)
    add_host(PREFIX + "api", "vapi", API_HOST)
    add_host(PREFIX + "cli", "vcli", CLIENT_HOST)
    for i, (name, host) in enumerate(zip(node_namespaces, node_hosts, strict=True)):
        add_host(name, f"vn{i}", host)
    # Without STP a bridge port forwards as soon as it is up; nodes that could not reach
    # the API would fail the start with their logs.


class Lines:
    """The JSON lines a process prints, read by a thread so that waiting is bounded."""

    def __init__(self, process: subprocess.Popen, log: Path):
        self.process, self.log = process, log
        self.queue: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            try:
                self.queue.put(json.loads(line))
            except ValueError:
                continue
        self.queue.put(None)

    def next(self, timeout: float) -> dict:
        try:
            record = self.queue.get(timeout=timeout)
        except queue.Empty:
            record = None
        if record is None:
            raise AssertionError(f"no answer from {self.process.args[3:7]} (exit "
                                 f"{self.process.poll()}):\n"
                                 f"{self.log.read_text(errors='replace')[-3000:]}")
        return record


def stop(process: subprocess.Popen, timeout: float) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise


@pytest.mark.parametrize(("fmt", "loop"), [("sphinx", "asyncio"), ("kem", "uvloop")])
def test_a_host_with_a_node_of_every_layer_cut_off(tmp_path, fmt, loop):
    """Two nodes per layer; one entry, one mix and one exit node share host A, which is
    cut off while 120 reliable messages are under way and restored later. The directory
    shows A's nodes `unreachable` within 10 s and `up` within 10 s of the link's return;
    the clients never empty a layer, deliver at least 95 % of the messages, and every
    transmission ends acknowledged or counted under a reason."""
    started = time.monotonic()
    n = MIX_NODES + GATEWAYS
    # Node index -> host: layers are laid out entry, entry, mix, mix, exit, exit, gateway.
    hosts = ["a", "b", "a", "b", "a", "b", "c"]
    host_address = {"a": f"{SUBNET}.10", "b": f"{SUBNET}.11", "c": f"{SUBNET}.12"}
    namespaces = {h: f"{PREFIX}{h}" for h in host_address}
    data = tmp_path / "data"
    supervisor = clients = None
    remove_namespaces()
    try:
        build_network(list(namespaces.values()), list(host_address.values()))
        supervisor_log = tmp_path / "supervisor.log"
        with open(supervisor_log, "w") as log:
            supervisor = subprocess.Popen(
                ["ip", "netns", "exec", PREFIX + "api", sys.executable, str(ROLES),
                 "supervise", "--data", str(data), "--format", fmt, "--api-host", API_HOST,
                 "--hosts", ",".join(host_address[h] for h in hosts),
                 "--namespaces", ",".join(namespaces[h] for h in hosts),
                 "--gateways", str(GATEWAYS), "--loop", loop],
                stdout=subprocess.PIPE, stderr=log, text=True, env=env(),
                start_new_session=True)
        up = Lines(supervisor, supervisor_log).next(40)
        assert up == {"event": "up", "api": f"http://{API_HOST}:8000"}
        state = json.loads((data / "testnet.json").read_text())
        assert len(state["nodes"]) == n
        cut_host = host_address["a"]
        on_a = sorted(node["layer"] for node in state["nodes"]
                      if node["address"].rsplit(":", 1)[0] == cut_host)
        assert on_a == ["entry", "exit", "mix"]

        clients_log = tmp_path / "clients.log"
        with open(clients_log, "w") as log:
            clients = subprocess.Popen(
                ["ip", "netns", "exec", PREFIX + "cli", sys.executable, str(ROLES), "clients",
                 "--data", str(data), "--loop", loop, "--watch-host", cut_host],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
                env=env(), start_new_session=True)
        client_lines = Lines(clients, clients_log)

        def say(line: str) -> None:
            clients.stdin.write(line + "\n")
            clients.stdin.flush()

        phase1 = client_lines.next(30)
        assert phase1["event"] == "phase1" and phase1["delivered"] == 30
        assert client_lines.next(10) == {"event": "sending"}
        ip("link", "set", "vn0", "down", ns=HUB)  # host a
        say("cut")
        cut = client_lines.next(30)
        assert cut["event"] == "unreachable" and cut["after_s"] is not None, cut
        assert cut["after_s"] <= 10 and cut["nodes"] == 3, cut
        ip("link", "set", "vn0", "up", ns=HUB)
        say("restored")
        back = client_lines.next(30)
        assert back["event"] == "back" and back["after_s"] is not None, back
        assert back["after_s"] <= 10, back
        done = client_lines.next(120)
        assert done["event"] == "done", done
        stats = done["stats"]
        sent = done["phase2"]
        # At least 95 % delivered, and no route was ever refused for an empty layer.
        assert done["delivered"] >= 0.95 * sent, done
        assert stats.get("no_route", 0) == 0, stats
        # Every transmission ended acknowledged or counted under a reason.
        unacked = sum(v for k, v in stats.items() if k.startswith("unacked_"))
        assert stats["transmissions"] == stats["transmissions_acked"] + unacked, stats
        assert stats.get("messages_failed", 0) == sent - done["delivered"], done
        assert clients.wait(10) == 0
        print(f"netns {fmt}/{loop}: {done['delivered']}/{sent} delivered, unreachable after "
              f"{cut['after_s']} s, back after {back['after_s']} s, "
              f"{stats.get('retransmissions', 0)} retransmissions, unacked "
              f"{ {k: v for k, v in stats.items() if k.startswith('unacked_')} }")
        assert stop(supervisor, 30) == 0, supervisor_log.read_text()[-3000:]
    finally:
        for process in (clients, supervisor):
            if process is not None and process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        remove_namespaces()
    assert not our_namespaces()
    assert time.monotonic() - started < 150
