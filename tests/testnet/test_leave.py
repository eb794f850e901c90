"""The leave protocol across a real testnet: a node of every mix layer gets SIGTERM while
clients send reliable messages, and nothing is lost (docs/node.md §16)."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest
import uvloop

from fogcore.mixnet import testnet as supervisor
from fogcore.mixnet.client import ClientConfig, MixClient
from fogcore.mixnet.directory_client import DirectoryClient
from fogcore.mixnet.resolver import DirectoryResolver
from fogcore.mixnet.topology import GATEWAY, Topology
from fogcore.mixnet.transport import TcpTransport

pytestmark = pytest.mark.slow

LOSSES = ("link_down", "link_lost", "unconfirmed", "shutdown", "unknown_hop", "queue_full")


async def _run(tmp_path, fmt: str) -> dict:
    options = supervisor.TestnetOptions(data_dir=tmp_path / "data", nodes=6, gateways=1, format=fmt,
                             api_port=0, mean_delay_ms=5.0, max_delay_ms=100.0,
                             start_timeout_s=60.0)
    testnet = supervisor.Testnet(options)
    await testnet.start()
    directory = DirectoryClient(testnet.api_url)
    resolver = DirectoryResolver(testnet.api_url)
    transport = TcpTransport(resolver)
    clients: list[MixClient] = []
    try:
        config = ClientConfig(format=fmt, poll_interval=0.02, ack_timeout=1.0,
                              max_timeout=4.0, max_attempts=8)
        for _ in range(2):
            topology = Topology(fmt)
            await directory.refresh(topology)
            gateway = topology.usable(GATEWAY)[0].node_id
            client = MixClient(topology, transport, gateway, config=config,
                               directory=directory)
            await client.start()
            clients.append(client)
        a, b = clients
        handles = list(testnet.nodes.values())
        leaving = [next(h for h in handles if h.layer == layer)
                   for layer in ("entry", "mix", "exit")]
        staying = [h for h in handles if h not in leaving]
        sends: list[tuple[float, asyncio.Future]] = []
        loop = asyncio.get_running_loop()
        stop_at = None
        for i in range(160):  # 8 s at 20 messages a second, the stop after 2 s
            if i == 40:
                stop_at = loop.time()
                for handle in leaving:
                    handle.process.send_signal(signal.SIGTERM)
            body = b"leave test %d" % i
            sends.append((loop.time(), asyncio.ensure_future(a.send(b.address, body))))
            await asyncio.sleep(0.05)
        async with asyncio.timeout(60):
            results = await asyncio.gather(*(f for _, f in sends), return_exceptions=True)
        received = set()
        async with asyncio.timeout(20):
            while len(received) < len(sends):
                received.add((await b.receive(timeout=20)).data)
        # The leaving nodes are gone; the stats lines of the others are a second old at most.
        async with asyncio.timeout(30):
            for handle in leaving:
                await handle.process.wait()
        await asyncio.sleep(1.5)
        drops = {h.node_id[:16]: {k: v for k, v in (h.series.last or {}).get(
                     "link_drops", {}).items() if k in LOSSES and v}
                 for h in staying}
        return {"results": results, "received": len(received), "sent": len(sends),
                "before_stop": sum(1 for t, _ in sends if t < stop_at),
                "exit_codes": [h.process.returncode for h in leaving],
                "drops": {k: v for k, v in drops.items() if v}, "stats": dict(a.stats)}
    finally:
        for client in clients:
            await client.stop()
        await transport.close()
        await resolver.aclose()
        await directory.aclose()
        await testnet.stop()


# One format per loop keeps the pair of runs within a minute.
@pytest.mark.parametrize(("fmt", "loop_factory"), [("sphinx", asyncio.new_event_loop),
                                                   ("kem", uvloop.new_event_loop)],
                         ids=["sphinx-asyncio", "kem-uvloop"])
def test_sigterm_of_a_node_in_every_layer_under_load_loses_nothing(tmp_path, fmt, run):
    started = time.monotonic()
    out = run(_run(tmp_path, fmt))
    failures = [r for r in out["results"] if isinstance(r, BaseException)]
    assert not failures, failures[:3]
    assert out["before_stop"] == 40
    assert out["received"] == out["sent"] == 160
    # The leaving nodes exited cleanly, and no node in front of them dropped a packet
    # for want of a next hop.
    assert out["exit_codes"] == [0, 0, 0]
    assert out["drops"] == {}, out
    assert out["stats"].get("messages_failed", 0) == 0
    assert time.monotonic() - started < 120
