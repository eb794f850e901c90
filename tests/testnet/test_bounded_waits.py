"""Every wait of the client side is bounded and cancellation-safe: the mailbox poller
stops even when a cancellation is swallowed on its way (Python 3.11's `wait_for` returns a
result that arrives together with the cancellation), and `TcpTransport` gives up on a
silent gateway or node within its timeouts. Both event loops."""

from __future__ import annotations

import asyncio
import os
import socket
import time

import pytest

from fogcore.mixnet.client import LoopbackNetwork, MixClient, TransportError
from fogcore.mixnet.gateway import REQUEST_SIZE
from fogcore.mixnet.links import StaticResolver
from fogcore.mixnet.topology import GATEWAY
from fogcore.mixnet.transport import TcpTransport


class AnswerOnCancel:
    """A transport whose mailbox fetch is answered at the very moment its caller is
    cancelled, through `asyncio.wait_for`: on Python 3.11 that wait_for returns the answer
    and the cancellation is lost (later versions raise it)."""

    def __init__(self) -> None:
        self.answer: asyncio.Future | None = None
        self.fetching = asyncio.Event()
        self.fetches = 0

    async def send_frame(self, first_hop: bytes, frame: bytes) -> None:
        raise TransportError("this transport only fetches")

    async def fetch_mailbox(self, gateway: bytes, mailbox: bytes) -> list:
        self.fetches += 1
        self.answer = asyncio.get_running_loop().create_future()
        self.fetching.set()
        return await asyncio.wait_for(self.answer, 5.0)


def test_poller_stops_when_a_cancellation_is_swallowed(run):
    network = LoopbackNetwork(layer_sizes=(1, 1, 1), gateways=1)
    gateway = network.layer(GATEWAY)[0]

    async def scenario():
        transport = AnswerOnCancel()
        client = MixClient(network.topology(), transport, gateway)
        await client.start()
        await transport.fetching.wait()
        transport.answer.set_result([])  # the answer and the cancellation meet
        started = time.monotonic()
        # (A stop() that absorbs the cancellation of its caller would make this timeout
        # return quietly, hence the clock.)
        async with asyncio.timeout(5):
            await client.stop()
        assert time.monotonic() - started < 1.0
        assert transport.fetches == 1  # the swallowed cancellation polled no more
        await asyncio.sleep(0.3)
        assert transport.fetches == 1

    run(scenario())


def test_stop_passes_a_cancellation_of_its_caller_on(run):
    network = LoopbackNetwork(layer_sizes=(1, 1, 1), gateways=1)
    gateway = network.layer(GATEWAY)[0]

    async def scenario():
        client = MixClient(network.topology(), network, gateway)
        await client.start()
        stopping = asyncio.ensure_future(client.stop())
        await asyncio.sleep(0)
        stopping.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stopping

    run(scenario())


async def _silent_server(hits: list):
    """A TCP server that reads and never answers."""

    async def serve(reader, writer):
        hits.append(await reader.read(REQUEST_SIZE))
        await asyncio.sleep(30)
        writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0)


def test_fetch_from_a_silent_gateway_is_bounded(run):
    async def scenario():
        hits: list = []
        server = await _silent_server(hits)
        port = server.sockets[0].getsockname()[1]
        gateway = os.urandom(32)
        transport = TcpTransport(StaticResolver({gateway: ("127.0.0.1", port)}),
                                 fetch_timeout=0.3, fetch_port_offset=0)
        try:
            started = time.monotonic()
            # Two fetches at once: the second waits behind the first, both bounded.
            results = await asyncio.gather(
                transport.fetch_mailbox(gateway, os.urandom(32)),
                transport.fetch_mailbox(gateway, os.urandom(32)), return_exceptions=True)
            assert all(isinstance(r, TransportError) for r in results), results
            assert time.monotonic() - started < 3.0
            assert hits  # the request did reach the server
        finally:
            await transport.close()
            server.close()
            await server.wait_closed()

    run(scenario())


def test_connect_to_an_unknown_or_closed_node_fails_fast(run):
    async def scenario():
        known, unknown = os.urandom(32), os.urandom(32)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            closed_port = s.getsockname()[1]
        transport = TcpTransport(StaticResolver({known: ("127.0.0.1", closed_port)}),
                                 connect_timeout=0.5)
        try:
            for node in (known, unknown):
                with pytest.raises(TransportError):
                    await transport.send_frame(node, b"\0" * 8)
        finally:
            await transport.close()

    run(scenario())


def test_receive_times_out(run):
    network = LoopbackNetwork(layer_sizes=(1, 1, 1), gateways=1)
    gateway = network.layer(GATEWAY)[0]

    async def scenario():
        client = MixClient(network.topology(), network, gateway)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await client.receive(timeout=0.05)
        assert time.monotonic() - started < 1.0

    run(scenario())


def test_publisher_starts_with_the_directory_unreachable(run):
    from fogcore.mixnet.config import NodeConfig
    from fogcore.mixnet.node import MixNode
    from fogcore.mixnet.publisher import Publisher

    async def scenario():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            closed_port = s.getsockname()[1]
        node = MixNode(NodeConfig(drain_timeout_s=1.0, leave_grace_s=0))
        await node.start()
        publisher = Publisher(node, f"http://127.0.0.1:{closed_port}", "no key",
                              address="127.0.0.1:1", interval_s=0.05)
        try:
            started = time.monotonic()
            await publisher.start()  # best effort: the node must start anyway
            await asyncio.sleep(0.8)  # the background retry, after a 0.5 s backoff
            await publisher.stop()
        finally:
            await node.stop()
        assert time.monotonic() - started < 5.0
        assert publisher.stats["errors"] >= 2 and not publisher.registered.is_set()

    run(scenario())
