"""End to end against a real `fogcore up`: node subprocesses, the API's directory, TCP
transport and gateway mailboxes, for both packet formats and both event loops."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time

import httpx
import pytest

from fogcore.mixnet.client import ClientConfig, MixClient
from fogcore.mixnet.directory_client import DirectoryClient
from fogcore.mixnet.resolver import DirectoryResolver
from fogcore.mixnet.topology import GATEWAY, Topology
from fogcore.mixnet.transport import TcpTransport

from .conftest import PASSWORD, env, fogcore


class Clients:
    """Two in-process clients of the testnet at `api`."""

    def __init__(self, api: str, fmt: str, hops: int):
        self.api, self.fmt, self.hops = api, fmt, hops

    async def __aenter__(self):
        self.directory = DirectoryClient(self.api)
        self.resolver = DirectoryResolver(self.api)
        self.transport = TcpTransport(self.resolver)
        topologies = [Topology(self.fmt), Topology(self.fmt)]
        for t in topologies:
            await self.directory.refresh(t)
        gateway = topologies[0].usable(GATEWAY)[0].node_id
        config = ClientConfig(format=self.fmt, hops=self.hops, poll_interval=0.02,
                              ack_timeout=1.0, max_attempts=8, down_for=30.0)
        self.a = MixClient(topologies[0], self.transport, gateway, config=config)
        self.b = MixClient(topologies[1], self.transport, gateway, config=config)
        await self.a.start()
        await self.b.start()
        return self

    async def __aexit__(self, *exc):
        await self.a.stop()
        await self.b.stop()
        await self.transport.close()
        await self.resolver.aclose()
        await self.directory.aclose()


async def within(seconds: float, coro):
    """Await `coro` for at most `seconds`; a body that swallowed the cancellation of the
    timeout and went on is caught by the clock."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    async with asyncio.timeout(seconds):
        result = await coro
    assert loop.time() - started < seconds, "the timeout's cancellation was swallowed"
    return result


def login(api: str) -> dict:
    r = httpx.post(f"{api}/api/auth/login", json={"username": "admin", "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['token']}"}


@pytest.mark.parametrize("hops", [3, 5])
def test_ping_command_delivers_every_loop(up, hops):
    result = up.run("ping", "--count", "20", "--json", "--hops", str(hops))
    assert result.returncode == 0, result.stderr + result.stdout
    report = json.loads(result.stdout)
    assert report["delivered"] == 20 and report["lost"] == 0 and report["format"] == up.format
    assert 0 < report["latency_ms"]["p50"] <= report["latency_ms"]["p99"]


@pytest.mark.parametrize("hops", [3, 5])
def test_message_and_surb_reply(up, run, hops):
    message = os.urandom(5000)  # three fragments

    async def scenario():
        async with Clients(up.api, up.format, hops) as c:
            sent = await within(20, c.a.send(c.b.address, message, want_reply=True))
            assert sent.fragments > 1
            got = await c.b.receive(timeout=10)
            assert got.kind == "message" and got.data == message
            await c.b.reply(got.reply_surb, b"thanks")
            reply = await c.a.receive(timeout=10)
            assert reply.kind == "reply" and reply.data == b"thanks"
            assert reply.surb_id == sent.reply_surb_id

    run(within(90, scenario()))


def test_send_and_recv_commands_with_reply(up):
    shown = up.run("recv", "--identity", "bob", "--address")
    address = shown.stdout.strip()  # bare: what `send --to` takes
    assert shown.returncode == 0 and shown.stderr == "" and shown.stdout == address + "\n"
    bob = subprocess.Popen(fogcore("recv", "--identity", "bob", "--wait", "20", "--reply",
                                   "hello alice", "--data", str(up.data)),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env())
    try:
        sent = up.run("send", "--identity", "alice", "--to", address, "hello bob")
        assert sent.returncode == 0, sent.stderr
        out, err = bob.communicate(timeout=30)
    finally:
        if bob.poll() is None:
            bob.kill()
    assert bob.returncode == 0, err
    assert "waiting up to 20 s" in err and "replied to message" in err  # progress
    assert "acknowledged" in sent.stderr
    got = json.loads(out)
    assert [m["text"] for m in got["received"]] == ["hello bob"] and got["replies_sent"] == 1
    reply = up.run("recv", "--identity", "alice", "--wait", "10")
    texts = [m["text"] for m in json.loads(reply.stdout)["received"] if m["kind"] == "reply"]
    assert texts == ["hello alice"]


def test_status_deploy_and_delete_through_the_api(up):
    headers = login(up.api)
    status = httpx.get(f"{up.api}/api/betanet/status", headers=headers).json()
    assert status["layers"] == {"entry": 2, "mix": 2, "exit": 2, "gateway": 1}
    assert all(n["state"] == "up" for n in status["nodes"])
    r = httpx.post(f"{up.api}/api/betanet/deploy", headers=headers,
                   json={"layer": "mix", "format": up.format}, timeout=40)
    assert r.status_code == 201, r.text
    node = r.json()
    assert node["layer"] == "mix" and node["state"] == "up"
    listed = httpx.get(f"{up.api}/api/directory/nodes").json()["nodes"]
    assert node["node_id"] in {n["node_id"] for n in listed}
    detail = httpx.get(f"{up.api}/api/betanet/nodes/{node['node_id']}", headers=headers)
    assert detail.status_code == 200 and "history" in detail.json() and "vrf" in detail.json()
    r = httpx.delete(f"{up.api}/api/betanet/nodes/{node['node_id']}", headers=headers,
                     timeout=40)
    assert r.status_code == 204
    assert httpx.get(f"{up.api}/api/betanet/nodes/{node['node_id']}",
                     headers=headers).status_code == 404
    ids = {n["node_id"] for n in httpx.get(f"{up.api}/api/directory/nodes").json()["nodes"]}
    assert node["node_id"] not in ids


def test_zz_node_killed_mid_traffic(up, run):
    """A freshly deployed mix node is killed while 30 messages are under way."""
    headers = login(up.api)
    r = httpx.post(f"{up.api}/api/betanet/deploy", headers=headers,
                   json={"layer": "mix", "format": up.format}, timeout=40)
    assert r.status_code == 201, r.text
    victim = next(n for n in up.state["nodes"] if n["node_id"] == r.json()["node_id"])

    async def scenario():
        async with Clients(up.api, up.format, 4) as c:
            async def one(i):
                await asyncio.sleep(0.05 * i)
                return await c.a.send(c.b.address, b"message %d" % i)

            sending = [asyncio.ensure_future(one(i)) for i in range(30)]
            await asyncio.sleep(0.3)
            os.kill(victim["pid"], signal.SIGKILL)
            results = await within(60, asyncio.gather(*sending))
            assert len(results) == 30
            got = set()
            while len(got) < 30:
                got.add((await c.b.receive(timeout=10)).data)
            assert got == {b"message %d" % i for i in range(30)}
            # Packets through the dead node were lost, counted and sent again elsewhere.
            assert c.a.stats["fragments_lost"] > 0
            assert c.a.stats["retransmissions"] >= c.a.stats["fragments_lost"]

    run(within(90, scenario()))
    status = httpx.get(f"{up.api}/api/betanet/status", headers=headers).json()
    states = {n["node_id"]: n["state"] for n in status["nodes"]}
    assert states[victim["node_id"]] == "down"


def test_z_stopped_node_turns_unreachable_and_back(up):
    """A node that stops answering on the network (SIGSTOP: its process lives on, like a
    host cut off) is `unreachable` in the status and gone from the listing within 10 s,
    and `up` and listed again within 10 s after it resumes."""
    headers = login(up.api)
    r = httpx.post(f"{up.api}/api/betanet/deploy", headers=headers,
                   json={"layer": "mix", "format": up.format}, timeout=40)
    assert r.status_code == 201, r.text
    node_id = r.json()["node_id"]
    victim = next(n for n in up.state["nodes"] if n["node_id"] == node_id)

    def wait_for(state: str) -> dict:
        deadline = time.monotonic() + 10
        while True:
            status = httpx.get(f"{up.api}/api/betanet/status", headers=headers).json()
            node = next(n for n in status["nodes"] if n["node_id"] == node_id)
            if node["state"] == state:
                return node
            assert time.monotonic() < deadline, f"still {node['state']}, not {state}"
            time.sleep(0.2)

    def listed() -> set[str]:
        nodes = httpx.get(f"{up.api}/api/directory/nodes").json()["nodes"]
        return {n["node_id"] for n in nodes}

    os.kill(victim["pid"], signal.SIGSTOP)
    try:
        wait_for("unreachable")
        assert node_id not in listed()
        everything = httpx.get(f"{up.api}/api/directory/nodes",
                               params={"state": "all"}).json()["nodes"]
        assert {n["node_id"]: n["state"] for n in everything}[node_id] == "unreachable"
    finally:
        os.kill(victim["pid"], signal.SIGCONT)
    wait_for("up")
    assert node_id in listed()
    detail = httpx.get(f"{up.api}/api/betanet/nodes/{node_id}", headers=headers).json()
    assert detail["state"] == "up" and detail["state_since"] > 0
    if "refusals" in detail:  # reported by nodes that count their refusals
        assert set(detail["refusals"]) >= {"total_cap", "source_cap", "no_first_frame",
                                           "idle", "draining"}
    assert httpx.delete(f"{up.api}/api/betanet/nodes/{node_id}", headers=headers,
                        timeout=40).status_code == 204


def test_send_to_an_unknown_gateway_fails_at_once(up):
    address = up.run("recv", "--identity", "carol", "--address").stdout.strip()
    mailbox = address.partition(".")[2]
    sent = up.run("send", "--to", "ab" * 32 + "." + mailbox, "--timeout", "600", "lost")
    assert sent.returncode == 1
    assert sent.stderr.strip().splitlines()[-1].startswith("fogcore send: gateway abababab")
    bad = up.run("send", "--to", "not-an-address", "x")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGHUP])
def test_up_ctrl_c_during_start_up(tmp_path, sig):
    """Ctrl-C (or a closed terminal's SIGHUP) while `fogcore up` starts its nodes:
    progress was shown, the exit is 128 + the signal without a traceback, and the state
    file of a running testnet was never left."""
    data = tmp_path / "data"
    process = subprocess.Popen(fogcore("up", "--data", str(data), "--port", "0", "--nodes",
                                       "3", "--gateways", "1"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env())
    try:
        lines = []
        for line in process.stderr:  # bounded: the command ends on its own within 60 s
            lines.append(line)
            if "starting 4 nodes" in line:
                break
        process.send_signal(sig)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    err = "".join(lines) + err
    assert process.returncode == 128 + sig, err
    assert "API listening at" in err and "Traceback" not in err
    assert not (data / "testnet.json").exists()
