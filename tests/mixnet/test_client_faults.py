"""Clients that never strand themselves and reroute in seconds (docs/client.md §1.3, §4):
every way a node can fail (suspicion, a refused connection, a connection timeout, an
entry whose probes go unanswered, the directory leaving nodes out) leaves each layer with
a node, delivery goes on through the remaining one, a node that recovers is used again,
and every lost transmission is accounted for. Loopback networks of real packet
processing, TCP fronts for the entry nodes where the transport is under test, and real
`MixNode`s on 127.0.0.1 for `fogcore ping`. Both implementations, both event loops."""

import asyncio
import socket
from collections import Counter

import pytest
from conftest import load_impl

from fogcore.mixnet.client import (
    UNACKED_REASONS,
    ClientConfig,
    Evidence,
    LoopbackNetwork,
    MixClient,
)
from fogcore.mixnet.control import (
    CONTROL_FORMAT,
    CONTROL_LENGTH,
    PROBE,
    STATE_UP,
    ControlSigner,
    decode_control,
)
from fogcore.mixnet.links import StaticResolver
from fogcore.mixnet.topology import ENTRY, GATEWAY, MIX, Topology
from fogcore.mixnet.transport import TcpTransport

from .conftest import wait_for


def make_network(impl_mode, **kwargs) -> LoopbackNetwork:
    backend = load_impl(impl_mode, "_batch")
    kwargs.setdefault("layer_sizes", (2, 2, 2))
    kwargs.setdefault("gateways", 1)
    return LoopbackNetwork(backend=backend, mean_delay_us=500, **kwargs)


def fast_config(**kwargs) -> ClientConfig:
    values = dict(poll_interval=0.005, ack_timeout=0.4, min_timeout=0.1, max_timeout=2.0,
                  max_attempts=6, refresh_interval=0.05, refresh_min_gap=0.02)
    values.update(kwargs)
    return ClientConfig(**values)


class Counting:
    """A transport wrapper that counts the first hops frames were handed to."""

    def __init__(self, inner):
        self.inner = inner
        self.first_hops: Counter[bytes] = Counter()

    async def send_frame(self, first_hop, frame):
        self.first_hops[bytes(first_hop)] += 1
        await self.inner.send_frame(first_hop, frame)

    async def fetch_mailbox(self, gateway, mailbox):
        return await self.inner.fetch_mailbox(gateway, mailbox)

    def add_failure_listener(self, listener):
        add = getattr(self.inner, "add_failure_listener", None)
        if add is not None:
            add(listener)


class Listing:
    """A directory whose listing leaves out the nodes in `hidden`."""

    def __init__(self, net):
        self.net = net
        self.hidden: set[bytes] = set()
        self.refreshes = 0

    async def refresh(self, topology: Topology):
        self.refreshes += 1
        return topology.refresh([d for d in self.net.descriptors()
                                 if not any(h in d[0] for h in self.hidden)])


def accounted(client: MixClient) -> None:
    """Every transmission ended acknowledged or lost for a counted reason; every message
    ended delivered or failed."""
    s = client.stats
    lost = sum(s[f"unacked_{r}"] for r in UNACKED_REASONS)
    assert s["transmissions"] == s["transmissions_acked"] + lost, dict(s)
    assert s["messages_sent"] == (s["messages_delivered"] + s["messages_failed"]
                                  + s["messages_abandoned"]), dict(s)


async def send_all(alice, bob, count: int, batch: int = 20) -> int:
    """Send `count` one-fragment messages, `batch` at a time; how many were delivered."""
    delivered = 0
    for start in range(0, count, batch):
        results = await asyncio.gather(*(alice.send(bob.address, b"m%d" % i)
                                         for i in range(start, min(count, start + batch))),
                                       return_exceptions=True)
        delivered += sum(not isinstance(r, BaseException) for r in results)
    return delivered


def clients(net, config, transport=None, directory=None):
    gateway = net.layer(GATEWAY)[0]
    alice = MixClient(net.topology(), transport or net, gateway, config=config,
                      directory=directory)
    bob = MixClient(net.topology(), net, gateway, config=config)
    return alice, bob


# ------------------------------------------------------------------- loopback: every path


@pytest.mark.parametrize("victim_layer", [ENTRY, MIX])
def test_one_node_down_keeps_delivery_over_95_percent(run, impl_mode, victim_layer):
    # Entry: refused connections; mix: packets lost in silence (suspicion from losses).
    net = make_network(impl_mode, seed=b"down%d" % victim_layer)
    alice, bob = clients(net, fast_config())
    victim = net.layer(victim_layer)[0]
    net.set_down(victim)

    async def main():
        async with alice, bob:
            return await send_all(alice, bob, 120)

    delivered = run(main())
    net.close()
    assert delivered >= 114, dict(alice.stats)
    accounted(alice)
    assert alice.stats["unacked_no_route"] == 0
    layer = alice.topology.nodes(victim_layer)
    assert alice.topology.is_suspect(victim)
    assert not all(alice.topology.is_suspect(n.node_id) for n in layer)


def test_suspicion_and_a_refused_entry_never_empty_the_layer(run, impl_mode):
    # The operator's case: the healthy entry suspected, the other one unreachable.
    net = make_network(impl_mode, seed=b"strand")
    counting = Counting(net)
    alice, bob = clients(net, fast_config(), transport=counting)
    dead, healthy = net.layer(ENTRY)
    net.set_down(dead)

    async def main():
        async with alice, bob:
            for _ in range(40):
                alice.report(Evidence.ENTRY_FAILED, (healthy,))
            assert alice.topology.is_suspect(healthy)
            delivered = await send_all(alice, bob, 30)
            assert delivered == 30
            # The acknowledgements over the healthy entry cleared it.
            assert not alice.topology.is_suspect(healthy)
            assert alice.topology.is_suspect(dead)

    run(main())
    net.close()
    accounted(alice)
    assert alice.stats["no_route"] == 0 and alice.stats["messages_failed"] == 0
    assert counting.first_hops[healthy] >= 30


def test_a_node_that_comes_back_is_used_again(run, impl_mode):
    net = make_network(impl_mode, seed=b"back")
    counting = Counting(net)
    # Short memory: a score halves every 50 ms and no node stays avoided beyond 0.4 s.
    alice, bob = clients(net, fast_config(suspicion_half_life=0.05, down_for=0.4),
                         transport=counting)
    node, _ = net.layer(ENTRY)
    net.set_down(node)

    async def main():
        async with alice, bob:
            assert await send_all(alice, bob, 10) == 10
            assert alice.stats["entry_refused"] >= 1
            net.set_down(node, False)
            before = counting.first_hops[node]
            deadline = asyncio.get_running_loop().time() + 10
            while counting.first_hops[node] == before:
                assert asyncio.get_running_loop().time() < deadline, "never used again"
                assert await send_all(alice, bob, 4) == 4
                await asyncio.sleep(0.05)

    run(main())
    net.close()
    accounted(alice)
    assert not alice.topology.is_suspect(node)


def test_directory_removal_never_empties_a_layer_and_nodes_come_back(run, impl_mode):
    net = make_network(impl_mode, seed=b"listing")
    listing = Listing(net)
    counting = Counting(net)
    alice, bob = clients(net, fast_config(), transport=counting, directory=listing)
    a, b = net.layer(ENTRY)

    async def refreshed():
        seen = listing.refreshes
        await wait_for(lambda: listing.refreshes >= seen + 2, what="two refreshes")

    async def main():
        async with alice, bob:
            listing.hidden = {a}
            await refreshed()
            assert a not in alice.topology
            start = counting.first_hops[a]
            assert await send_all(alice, bob, 20) == 20
            assert counting.first_hops[a] == start  # gone from the listing: never chosen
            # The listing leaves out every entry: the last one known stays in use.
            listing.hidden = {a, b}
            await refreshed()
            assert b in alice.topology and a not in alice.topology
            assert await send_all(alice, bob, 10) == 10
            # Listed again: chosen again.
            listing.hidden = set()
            await refreshed()
            start = counting.first_hops[a]
            assert await send_all(alice, bob, 20) == 20
            assert counting.first_hops[a] > start

    run(main())
    net.close()
    accounted(alice)
    assert alice.stats["refreshes"] >= 6 and alice.stats["no_route"] == 0


def test_every_loss_is_accounted_for_when_messages_fail(run, impl_mode):
    net = make_network(impl_mode, seed=b"acct")
    alice, bob = clients(net, fast_config(ack_timeout=0.1, min_timeout=0.05,
                                          max_timeout=0.2, max_attempts=3))
    net.set_down(net.layer(ENTRY)[0])

    async def main():
        await alice.start()  # bob never polls: nothing is acknowledged
        assert await send_all(alice, bob, 4) == 0
        await alice.stop()

    run(main())
    net.close()
    accounted(alice)
    s = alice.stats
    assert s["messages_failed"] == 4 and s["fragments_failed"] == 4
    assert s["unacked_timeout"] == 12 and s["transmissions_acked"] == 0


# ------------------------------------------------------------------- TCP fronts: the transport


class Front:
    """A TCP front for one loopback node: it answers PROBEs with the node's signed
    PROBE_ACK and hands packet frames to the loopback network. `cut` makes it a host cut
    off: it reads and drops everything and answers nothing."""

    def __init__(self, net, node_id: bytes):
        self.net = net
        self.node_id = node_id
        self.signer = ControlSigner(net.nodes[node_id].keys.identity_seed)
        self.cut = False
        self.server = None
        self.frames = 0
        self.writers = set()
        self.handlers = set()

    async def start(self):
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[:2]

    async def stop(self):
        self.server.close()
        for writer in self.writers:
            writer.close()
        # Let every handler see its connection end, so that no task (holding the network
        # and its compiled objects) outlives the test.
        if self.handlers:
            await asyncio.wait(self.handlers, timeout=2)

    async def _serve(self, reader, writer):
        self.writers.add(writer)
        self.handlers.add(asyncio.current_task())
        try:
            while True:
                header = await reader.readexactly(4)
                body = await reader.readexactly(int.from_bytes(header[2:4], "big"))
                if self.cut:
                    continue
                if header[1] == CONTROL_FORMAT and len(body) == CONTROL_LENGTH:
                    message = decode_control(body)
                    if message.kind == PROBE:
                        writer.write(self.signer.ack(message.nonce, STATE_UP))
                    continue
                self.frames += 1
                await self.net.send_frame(self.node_id, header + body)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
        except asyncio.CancelledError:
            # The loop is closing under a connection still open: end quietly.
            writer.close()


class Stalling(StaticResolver):
    """Resolves the nodes in `stall` never (a connection that cannot be made in time)."""

    def __init__(self):
        super().__init__()
        self.stall: set[bytes] = set()

    async def resolve(self, node_id):
        if bytes(node_id) in self.stall:
            await asyncio.sleep(3600)
        return await super().resolve(node_id)


class FrontedNetwork:
    """Frames go over TCP to the entry fronts; mailboxes are fetched in process."""

    def __init__(self, net, tcp: TcpTransport):
        self.net, self.tcp = net, tcp

    async def send_frame(self, first_hop, frame):
        await self.tcp.send_frame(first_hop, frame)

    async def fetch_mailbox(self, gateway, mailbox):
        return await self.net.fetch_mailbox(gateway, mailbox)

    def add_failure_listener(self, listener):
        self.tcp.add_failure_listener(listener)


async def fronted(net, **transport_options):
    fronts = {nid: Front(net, nid) for nid in net.layer(ENTRY)}
    resolver = Stalling()
    for nid, front in fronts.items():
        resolver.add(nid, *(await front.start()))
    tcp = TcpTransport(resolver, **transport_options)
    return fronts, resolver, tcp


def test_unanswered_probes_reroute_in_seconds(run, impl_mode):
    net = make_network(impl_mode, seed=b"probe")
    # Timeouts far above the probe bound: the probe, not the ack timer, notices the cut.
    config = fast_config(ack_timeout=3.0, min_timeout=3.0, max_timeout=6.0)

    async def main():
        fronts, resolver, tcp = await fronted(net, probe_interval=0.1, probe_timeout=0.3)
        bob_fronts, _, bob_tcp = await fronted(net, probe_interval=0.1, probe_timeout=0.3)
        alice, bob = clients(net, config, transport=FrontedNetwork(net, tcp))
        bob.transport = FrontedNetwork(net, bob_tcp)
        cut, kept = net.layer(ENTRY)
        try:
            async with alice, bob:
                assert await send_all(alice, bob, 20) == 20
                assert tcp.counters["probe_acks"] >= 1
                sock = tcp._packets[kept].writer.get_extra_info("socket")
                assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
                fronts[cut].cut = True
                started = asyncio.get_running_loop().time()
                assert await send_all(alice, bob, 60, batch=30) == 60
                took = asyncio.get_running_loop().time() - started
                # Rerouted on the probe (0.4 s), not after the 3 s acknowledgement timer.
                assert alice.stats["unacked_unconfirmed"] >= 1
                assert alice.stats["unacked_timeout"] == 0, (took, dict(alice.stats))
                assert alice.stats["entry_probe_timeout"] >= 1
                assert alice.stats["frames_unconfirmed"] >= 1
                assert alice.topology.is_suspect(cut)
                assert not alice.topology.is_suspect(kept)
                accounted(alice)
        finally:
            await tcp.close()
            await bob_tcp.close()
            for front in [*fronts.values(), *bob_fronts.values()]:
                await front.stop()

    run(main())
    net.close()


def test_connect_timeout_and_refusal_never_empty_the_layer(run, impl_mode):
    net = make_network(impl_mode, seed=b"connect")

    async def main():
        fronts, resolver, tcp = await fronted(net, connect_timeout=0.3)
        alice, bob = clients(net, fast_config(), transport=FrontedNetwork(net, tcp))
        stalled, refusing = net.layer(ENTRY)
        try:
            async with alice, bob:
                resolver.stall.add(stalled)
                assert await send_all(alice, bob, 20) == 20
                assert alice.stats["entry_connect_timeout"] >= 1
                # Now the other one refuses too, and the stalled one comes back: the
                # client still has a layer to route through and moves back.
                resolver.stall.clear()
                await fronts[refusing].stop()
                resolver.add(refusing, "127.0.0.1", 1)  # nothing listens on port 1
                assert await send_all(alice, bob, 20) >= 19
                assert alice.stats["entry_refused"] >= 1
                assert alice.stats["no_route"] == 0
                accounted(alice)
        finally:
            await tcp.close()
            for front in fronts.values():
                await front.stop()

    run(main())
    net.close()


# ------------------------------------------------------------------- real nodes: fogcore ping


class FixedListing:
    """A directory that keeps listing every node, the dead ones too (the worst case: the
    client has only its own evidence)."""

    def __init__(self, entries):
        self.entries = entries

    async def refresh(self, topology: Topology):
        return topology.refresh(self.entries)


def test_ping_reroutes_after_real_nodes_are_killed(run, net):
    from fogcore.mixnet.descriptor import sign_descriptor
    from fogcore.mixnet.gateway import GatewayService
    from fogcore.mixnet.testnet_commands import client_config, run_ping

    layers = ["entry", "entry", "mix", "mix", "exit", "exit", "gateway"]

    async def main():
        nodes = [await net.node(i + 1, layer=layer) for i, layer in enumerate(layers)]
        gateway = nodes[-1]
        fetch = GatewayService(gateway.mailboxes, "127.0.0.1", 0)
        await fetch.start()
        entries = []
        for i, node in enumerate(nodes):
            d = sign_descriptor(bytes([i + 1]) * 32, routing_key=node.keys.routing_public,
                                layer=layers[i], format="sphinx",
                                address="{}:{}".format(*node.address))
            entries.append((d.encoded, d.signature))
        transport = TcpTransport(net.resolver, fetch_ports={gateway.node_id: fetch.address[1]})
        topology = Topology("sphinx")
        topology.refresh(entries)
        client = MixClient(topology, transport, gateway.node_id,
                           config=client_config("sphinx", 4), directory=FixedListing(entries))
        entry, mix = nodes[0], nodes[2]
        try:
            async with client:
                first = await run_ping(client, 20, interval=0.005, timeout=5, loop_timeout=2)
                # Warm-up: the network carries loops (a straggler may miss the 2 s bound on
                # a loaded machine, above all in the pure-Python build).
                assert first["delivered"] >= 15, first
                # A mix node dies; the directory still lists it.
                await mix.leave(0)
                second = await run_ping(client, 150, interval=0.01, timeout=2,
                                        loop_timeout=0.5)
                via = {n["node_id"]: n for n in second["nodes"]}
                dead = via[mix.node_id.hex()]
                assert dead["loops_returned"] == 0 and dead["in_topology"]
                # Without rerouting half the loops (75) would go through it.
                assert dead["loops_sent"] <= 50, second
                assert second["delivered"] >= 100, second
                assert client.topology.is_suspect(mix.node_id)
                # An entry node dies: its connection is lost or refused, never chosen again.
                await entry.leave(0)
                third = await run_ping(client, 50, interval=0.01, timeout=2,
                                       loop_timeout=0.5)
                assert third["delivered"] >= 45, third
                assert any(k.startswith("entry_") for k in third["client"]), third
                assert client.topology.is_suspect(entry.node_id)
                for key in ("client", "cover", "transport", "latency_ms"):
                    assert key in third
        finally:
            await transport.close()
            await fetch.stop()
            await net.stop()

    run(main())


def test_loops_clear_and_raise_suspicion(run, impl_mode):
    from fogcore.mixnet.cover import CoverTraffic

    net = make_network(impl_mode, seed=b"loops")
    alice, _ = clients(net, fast_config())
    dead, alive = net.layer(MIX)
    net.set_down(dead)
    cover = CoverTraffic(alice, loop_rate=0, drop_rate=0, loop_timeout=0.2)

    async def main():
        async with alice:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            # Loops until the dead mix is suspect; the live one is cleared by its loops.
            while not alice.topology.is_suspect(dead):
                assert loop.time() < deadline, dict(cover.stats)
                for _ in range(5):
                    await cover.send_loop()
                await asyncio.sleep(0.05)
                cover.expire_loops()
            assert not alice.topology.is_suspect(alive)
            # From now on the loops avoid it, and they come back.
            sent_via_dead = cover.loops_sent_via[dead]
            returned = cover.stats["loops_returned"]
            for _ in range(10):
                await cover.send_loop()
            await wait_for(lambda: cover.stats["loops_returned"] >= returned + 10,
                           what="loops back")
            assert cover.loops_sent_via[dead] == sent_via_dead
            assert cover.loops_returned_via[dead] == 0 and cover.loops_returned_via[alive] > 0

    run(main())
    net.close()
    assert cover.stats["loops_lost"] >= 3


def test_ping_waits_for_a_slow_loop_without_holding_the_loop(run, impl_mode):
    # Every loop is back before the next one leaves, then one is slow: waiting for it must
    # yield to the event loop (a wait that returned at once used to spin until the
    # timeout, starving the poller, so the slow loop was never fetched and counted lost).
    from fogcore.mixnet.testnet_commands import run_ping

    net = make_network(impl_mode, seed=b"ping wait")
    alice, _ = clients(net, fast_config())
    mixes = net.layer(MIX)

    async def main():
        sent = 0
        original = alice.send_packet

        async def send_packet(route, mailbox, message):
            nonlocal sent
            sent += 1
            if sent == 4:  # the last loop is held 0.3 s by every mix
                for node in mixes:
                    net.set_misbehaviour(node, extra_delay_us=300_000)
            return await original(route, mailbox, message)

        async with alice:
            alice.send_packet = send_packet
            return await run_ping(alice, 4, interval=0.05, timeout=2.0, loop_timeout=3.0)

    out = run(main())
    assert out["delivered"] == 4 and out["lost"] == 0, out
    net.close()
