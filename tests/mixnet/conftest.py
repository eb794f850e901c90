"""Helpers for the node runtime tests: small networks of real nodes on 127.0.0.1, for the
implementation under test (`impl_mode`) and the event loop under test (`run`)."""

import asyncio

import pytest

from fogcore import packet
from fogcore.mixnet.config import load_config
from fogcore.mixnet.keystore import KeyStore
from fogcore.mixnet.links import StaticResolver
from fogcore.mixnet.node import MixNode

#: small and fast: 1 ms mean delay, a small arena and replay filter
TEST_SETTINGS = dict(mean_delay_ms=1, max_delay_ms=10, arena_slots=512, replay_capacity=20000,
                     frame_timeout_s=5.0, drain_timeout_s=5.0, backoff_base_s=0.02,
                     backoff_max_s=0.2, connect_timeout_s=1.0, leave_grace_s=0.0)


class Net:
    """Nodes sharing one static resolver."""

    def __init__(self, impl: str):
        self.impl = impl
        self.resolver = StaticResolver()
        self.nodes: list[MixNode] = []

    async def node(self, seed: int, fmt: str = "sphinx", keystore=None, **settings) -> MixNode:
        cfg = load_config(env={}, format=fmt, **{**TEST_SETTINGS, **settings})
        ks = keystore or KeyStore(None, identity_seed=bytes([seed]) * 32)
        node = MixNode(cfg, keystore=ks, resolver=self.resolver, impl=self.impl)
        await node.start()
        self.resolver.add(node.node_id, *node.address)
        self.nodes.append(node)
        return node

    async def chain(self, hops: int, fmt: str = "sphinx", **settings) -> list[MixNode]:
        return [await self.node(i + 1, fmt, **settings) for i in range(hops)]

    async def stop(self) -> None:
        for node in self.nodes:
            await node.stop()


@pytest.fixture
def net(impl_mode):
    return Net(impl_mode)


def build(nodes, message: bytes, fmt: str = "sphinx", mailbox: bytes = b"M" * 32):
    """A packet through `nodes` delivering `message` to `mailbox` at the last one."""
    return packet.build_packet([n.keys.info() for n in nodes], mailbox, message, format=fmt)


async def wait_for(predicate, timeout: float = 5.0, what: str = "condition") -> None:
    """Poll `predicate` until true; fail after `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


async def send_frames(address, frames, close: bool = True):
    """Open a connection to `address`, write the frames, and (optionally) close it."""
    reader, writer = await asyncio.open_connection(*address)
    for frame in frames:
        writer.write(frame)
    await writer.drain()
    if close:
        writer.close()
        await writer.wait_closed()
    return reader, writer


async def closed_by_peer(reader, timeout: float = 5.0) -> bool:
    """True once the node has closed the connection (EOF or reset)."""
    try:
        return await asyncio.wait_for(reader.read(), timeout) == b""
    except ConnectionError:
        return True
