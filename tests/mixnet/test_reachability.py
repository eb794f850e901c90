"""The directory's prober against fake nodes on 127.0.0.1 (and a real `MixNode` when it
answers probes): a node that stops answering becomes `unreachable`, and `up` again when it
answers; bad answers, refused addresses and metrics. Short intervals, both event loops."""

from __future__ import annotations

import asyncio
import time

import pytest
from prometheus_client import CollectorRegistry

from fogcore.mixnet.control import (
    CONTROL_FRAME_SIZE,
    PROBE,
    STATE_DRAINING,
    STATE_UP,
    ControlSigner,
    decode_control,
)
from fogcore.mixnet.reachability import ProbeSettings, ReachabilityProber, is_loopback
from fogcore.store import open_store

FAST = ProbeSettings(interval_s=0.05, unreachable_after_s=0.4, connect_timeout_s=0.3,
                     ack_timeout_s=0.2, backoff_min_s=0.02, backoff_max_s=0.1,
                     refresh_s=0.1, loopback_only=True)
DEADLINE_S = 10.0


class FakeNode:
    """A loopback server answering PROBEs with signed acks while `answering` is set;
    otherwise it keeps connections open and stays silent, like a host cut off."""

    def __init__(self, seed: int, *, signer: ControlSigner | None = None):
        self.signer = signer or ControlSigner(bytes([seed]) * 32)
        self.answering = True
        self.state = STATE_UP
        self.garbage = False
        self.server: asyncio.Server | None = None
        self.port = 0
        self.writers: set[asyncio.StreamWriter] = set()

    @property
    def node_id(self) -> str:
        return self.signer.node_id.hex()

    async def start(self, port: int = 0) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        self.server.close()
        for writer in list(self.writers):
            writer.close()
        await self.server.wait_closed()

    async def _serve(self, reader, writer) -> None:
        self.writers.add(writer)
        try:
            while True:
                frame = await reader.readexactly(CONTROL_FRAME_SIZE)
                message = decode_control(frame[4:])
                assert message.kind == PROBE
                if self.garbage:
                    writer.write(b"\x00" * CONTROL_FRAME_SIZE)
                elif self.answering:
                    writer.write(self.signer.ack(message.nonce, self.state))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.writers.discard(writer)
            writer.close()


async def register(store, node_id: str, identity: bytes, address: str) -> None:
    now = time.time()
    await store.directory.upsert(
        node_id=node_id, identity_key=identity, routing_key=b"\x02" * 32, layer=1,
        format="sphinx", address=address, descriptor=b"d", signature=b"\x03" * 64, info={},
        published_at=now, expires_at=now + 3600)


async def wait_state(store, node_id: str, state: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while (current := (await store.directory.get(node_id)).state) != state:
        assert time.monotonic() < deadline, f"{node_id[:8]} stayed {current}, not {state}"
        await asyncio.sleep(0.02)


def metric(registry: CollectorRegistry, name: str, **labels) -> float:
    return registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
def probed(run, tmp_path):
    """`probed(body)`: run `await body(store, prober, registry)` with a fresh SQLite store
    and a running prober with short intervals."""

    def runner(body, settings: ProbeSettings = FAST):
        async def main():
            store = await open_store(f"sqlite://{tmp_path / 'dir.db'}")
            registry = CollectorRegistry()
            prober = ReachabilityProber(store.directory, settings, registry=registry)
            try:
                await prober.start()
                return await body(store, prober, registry)
            finally:
                await prober.stop()
                await store.close()

        return run(main())

    return runner


def test_silent_node_becomes_unreachable_and_comes_back(probed):
    async def body(store, prober, registry):
        node = FakeNode(1)
        await node.start()
        await register(store, node.node_id, node.signer.node_id, f"127.0.0.1:{node.port}")
        await wait_state(store, node.node_id, "up")
        assert (await store.directory.get(node.node_id)).last_ack_at is not None
        node.answering = False  # the link is cut: connections stay, nothing comes back
        await wait_state(store, node.node_id, "unreachable")
        assert metric(registry, "fogcore_directory_probe_failures_total",
                      reason="ack_timeout") >= 1
        node.answering = True
        await wait_state(store, node.node_id, "up")
        node.state = STATE_DRAINING
        await wait_state(store, node.node_id, "draining")
        assert metric(registry, "fogcore_directory_probes_sent_total") > 0
        assert metric(registry, "fogcore_directory_probe_acks_total") > 0
        assert metric(registry, "fogcore_directory_nodes", state="draining") == 1
        assert prober.states() == {node.node_id: "draining"}
        await node.stop()

    probed(body)


def test_stopped_node_becomes_unreachable_and_restarted_node_up(probed):
    async def body(store, prober, registry):
        node = FakeNode(2)
        await node.start()
        await register(store, node.node_id, node.signer.node_id, f"127.0.0.1:{node.port}")
        await wait_state(store, node.node_id, "up")
        await node.stop()
        await wait_state(store, node.node_id, "unreachable")
        assert metric(registry, "fogcore_directory_probe_failures_total", reason="refused") \
            + metric(registry, "fogcore_directory_probe_failures_total", reason="closed") >= 1
        await node.start(node.port)
        await wait_state(store, node.node_id, "up")
        await node.stop()

    probed(body)


def test_answers_signed_by_another_node_do_not_count(probed):
    async def body(store, prober, registry):
        impostor = FakeNode(3, signer=ControlSigner(bytes([4]) * 32))
        await impostor.start()
        listed = ControlSigner(bytes([3]) * 32).node_id
        await register(store, listed.hex(), listed, f"127.0.0.1:{impostor.port}")
        await wait_state(store, listed.hex(), "unreachable")
        assert metric(registry, "fogcore_directory_probe_failures_total", reason="bad_ack") >= 1
        assert metric(registry, "fogcore_directory_probe_acks_total") == 0
        await impostor.stop()

    probed(body)


def test_garbage_answers_drop_the_connection(probed):
    async def body(store, prober, registry):
        node = FakeNode(5)
        node.garbage = True
        await node.start()
        await register(store, node.node_id, node.signer.node_id, f"127.0.0.1:{node.port}")
        await wait_state(store, node.node_id, "unreachable")
        assert metric(registry, "fogcore_directory_probe_failures_total",
                      reason="bad_frame") >= 1
        node.garbage = False
        await wait_state(store, node.node_id, "up")
        await node.stop()

    probed(body)


def test_non_loopback_addresses_are_never_probed(probed):
    async def body(store, prober, registry):
        signer = ControlSigner(bytes([6]) * 32)
        await register(store, signer.node_id.hex(), signer.node_id, "10.0.0.1:9000")
        other = ControlSigner(bytes([7]) * 32)
        await register(store, other.node_id.hex(), other.node_id, "node.example:9000")
        deadline = time.monotonic() + DEADLINE_S
        while len(prober.states()) < 2:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        await asyncio.sleep(3 * FAST.unreachable_after_s)  # long enough to have judged them
        for node_id in (signer.node_id.hex(), other.node_id.hex()):
            assert (await store.directory.get(node_id)).state == "unknown"
        assert metric(registry, "fogcore_directory_probe_failures_total", reason="address") == 2
        assert metric(registry, "fogcore_directory_probes_sent_total") == 0
        assert metric(registry, "fogcore_directory_nodes", state="unknown") == 2

    probed(body)


def test_leave_is_not_overridden_by_acks(probed):
    async def body(store, prober, registry):
        node = FakeNode(8)
        await node.start()
        await register(store, node.node_id, node.signer.node_id, f"127.0.0.1:{node.port}")
        await wait_state(store, node.node_id, "up")
        await store.directory.leave(node.node_id, time.time() + 1)
        acks = metric(registry, "fogcore_directory_probe_acks_total")
        deadline = time.monotonic() + DEADLINE_S
        while metric(registry, "fogcore_directory_probe_acks_total") < acks + 5:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        assert (await store.directory.get(node.node_id)).state == "draining"
        await node.stop()

    probed(body)


def test_is_loopback():
    assert is_loopback("127.0.0.1") and is_loopback("127.5.6.7") and is_loopback("::1")
    assert not is_loopback("10.0.0.1") and not is_loopback("localhost")
    assert not is_loopback("2001:db8::1")


def test_settings_are_checked():
    with pytest.raises(ValueError):
        ProbeSettings(interval_s=0)
    with pytest.raises(ValueError):
        ProbeSettings(backoff_min_s=2.0, backoff_max_s=1.0)


def test_real_node_is_up_then_unreachable_once_stopped(probed, net):
    """A real `MixNode` (both implementations) answers the probes; stopped, it turns
    `unreachable`."""

    async def body(store, prober, registry):
        node = await net.node(11)
        host, port = node.address
        await register(store, node.node_id.hex(), node.node_id, f"{host}:{port}")
        await wait_state(store, node.node_id.hex(), "up")
        assert metric(registry, "fogcore_directory_probe_failures_total",
                      reason="bad_ack") == 0
        await net.stop()
        await wait_state(store, node.node_id.hex(), "unreachable")

    probed(body)
