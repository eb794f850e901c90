"""Graceful shutdown, a next hop killed and restarted, a next hop that stops reading
(pending writes keep their slots), and routing-key rotation with its overlap window."""

import asyncio
import socket

from fogcore import packet
from fogcore.mixnet.keystore import KeyStore

from .conftest import build, send_frames, wait_for

MAILBOX = b"M" * 32


def test_graceful_shutdown_loses_no_accepted_packet(run, net):
    async def main():
        a = await net.node(1, mean_delay_ms=100, max_delay_ms=400)
        b = await net.node(2)
        try:
            frames = [build([a, b], b"p%d" % i).packet for i in range(60)]
            await send_frames(a.address, frames)
            await wait_for(lambda: a.arena.frames_in == 60, what="all frames received")
            assert len(a.delay_queue) + a.arena.ready_count > 0   # still in the node
            await a.stop()
            assert a.stats()["sent"] == 60 and a.stats()["link_drops"] == {}
            await wait_for(lambda: b.mailboxes.count(MAILBOX) == 60, what="delivery")
        finally:
            await net.stop()

    run(main())


def test_next_hop_killed_and_back(run, net):
    async def main():
        a = await net.node(1)
        ks_b = KeyStore(None, identity_seed=bytes([2]) * 32)
        b = await net.node(2, keystore=ks_b)
        port = b.address[1]
        try:
            route = [a, b]
            await send_frames(a.address, [build(route, b"before").packet])
            await wait_for(lambda: b.mailboxes.count(MAILBOX) == 1, what="first delivery")
            await b.stop()
            # traffic while the next hop is down: dropped and counted, never stuck
            reader, writer = await asyncio.open_connection(*a.address)
            for i in range(20):
                writer.write(build(route, b"lost %d" % i).packet)
                await writer.drain()
                await asyncio.sleep(0.005)
            await wait_for(lambda: sum(a.stats()["link_drops"].values()) == 20, what="drops")
            assert set(a.stats()["link_drops"]) <= {"link_down", "link_lost"}
            await wait_for(lambda: a.arena.nfree == a.arena.nslots, what="slots back")
            # the next hop comes back on the same port with the same keys
            b2 = await net.node(2, keystore=ks_b, listen_port=port)
            for _ in range(100):
                writer.write(build(route, b"after").packet)
                await writer.drain()
                await asyncio.sleep(0.02)
                if b2.mailboxes.count(MAILBOX):
                    break
            await wait_for(lambda: b2.mailboxes.count(MAILBOX) >= 1, what="delivery after")
            assert a.links.links[b.node_id].connects == 2
            writer.close()
        finally:
            await net.stop()

    run(main())


class _Sink(asyncio.Protocol):
    """A next hop that collects what it reads."""

    def __init__(self, store):
        self.store = store

    def data_received(self, data):
        self.store["data"] += data


def test_slots_of_pending_writes_are_never_handed_out(run, net):
    async def main():
        loop = asyncio.get_running_loop()
        # The sink below is no node: it answers no probe (and reads none).
        a = await net.node(1, arena_slots=2048, link_queue=4096, max_batch=512,
                           link_sndbuf=16384, probe_interval_s=0, send_timeout_s=0)
        b_keys = packet.NodeKeys.from_seed(bytes([2]) * 32)
        store = {"data": bytearray()}
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        # The next hop accepts the link but reads nothing until resumed. (Not
        # pause_reading() inside connection_made: uvloop starts reading right after
        # connection_made returns and ignores that pause, so the sink would read
        # everything and the writes would never stay pending.)
        accepted = loop.create_task(loop.sock_accept(listener))
        net.resolver.add(b_keys.node_id, *listener.getsockname()[:2])
        transport = None
        try:
            route = [a.keys.info(), b_keys.info()]
            n = 1500
            frames = [packet.build_packet(route, MAILBOX, b"%d" % i).packet for i in range(n)]
            await send_frames(a.address, frames)
            await wait_for(lambda: a.arena.frames_in == n, what="frames in")
            link = None

            def blocked():
                nonlocal link
                link = a.links.links.get(b_keys.node_id)
                return link is not None and link.pending and a.delay_queue.released == n
            await wait_for(blocked, what="writes pending behind a paused reader")
            pending = list(link.pending)
            assert all(a.arena.state(s) == 4 for s in pending)
            # take every free slot: none of them may be one still referenced by the transport
            claimed = []
            while (slot := a.arena.claim_slot()) != -1:
                claimed.append(slot)
            assert claimed and not set(claimed) & set(pending)
            for slot in claimed:
                a.arena.memory[slot * 2560:(slot + 1) * 2560] = b"\xff" * 2560  # scribble
                a.arena.submit(slot)        # processed as rejects and freed
            sock, _ = await accepted
            transport, _ = await loop.connect_accepted_socket(lambda: _Sink(store), sock)
            size = packet.FRAME_SIZES["sphinx"]
            await wait_for(lambda: len(store["data"]) == n * size, timeout=10,
                           what="every frame at the next hop")
            # every forwarded frame arrives intact: the next hop can open each one
            filt = __import__("fogcore.replay", fromlist=["x"]).ReplayFilterPy(10 * n, 1e-6)
            got = set()
            data = bytes(store["data"])
            for i in range(n):
                out = packet.process_packet(b_keys, data[i * size:(i + 1) * size], filt)
                assert out.kind == packet.Kind.DELIVER
                got.add(out.payload)
            assert got == {b"%d" % i for i in range(n)}
            await wait_for(lambda: a.arena.nfree == a.arena.nslots, what="slots back")
        finally:
            accepted.cancel()
            if transport is not None:
                transport.close()
            listener.close()
            await net.stop()

    run(main())


def test_previous_routing_key_accepted_during_overlap(run, net):
    async def main():
        now = [1000.0]
        clock = lambda: now[0]  # noqa: E731
        ks = KeyStore(None, key_epoch_s=100, overlap_s=10, identity_seed=b"k" * 32, clock=clock)
        node = await net.node(1, keystore=ks, key_epoch_s=100, key_overlap_s=10)
        node._clock = clock
        node._rotate()
        try:
            old_info = node.keys.info()
            now[0] = 1105.0           # a new epoch, inside the overlap window
            node._rotate()
            assert node.keys.info() != old_info
            old1 = packet.build_packet([old_info], MAILBOX, b"old key in window").packet
            new1 = packet.build_packet([node.keys.info()], MAILBOX, b"new key").packet
            await send_frames(node.address, [old1, new1])
            await wait_for(lambda: node.mailboxes.count(MAILBOX) == 2, what="both delivered")
            now[0] = 1111.0           # the window is over
            node._rotate()
            old2 = packet.build_packet([old_info], MAILBOX, b"old key too late").packet
            await send_frames(node.address, [old2])
            await wait_for(lambda: node.stats()["rejects"] == {"bad_mac": 1}, what="reject")
            payloads = {d.payload for d in node.mailboxes.fetch(MAILBOX)}
            assert payloads == {b"old key in window", b"new key"}
        finally:
            await net.stop()

    run(main())
