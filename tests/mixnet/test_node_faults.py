"""A node under faults (docs/node.md §7, §6, §16): a next hop that answers nothing is
declared unreachable in seconds and every packet it cannot vouch for is counted; a flood
of idle connections from one address never stops another client; a node that leaves
forwards everything accepted before and during its grace, each packet at its committed
delay, and its upstream links learn that it is draining."""

import asyncio
import socket

from fogcore import packet

from .conftest import build, send_frames, wait_for

MAILBOX = b"M" * 32
FAST_PROBES = dict(probe_interval_s=0.1, probe_timeout_s=0.4, send_timeout_s=1.0)


class _BlackHole(asyncio.Protocol):
    """A next hop whose host is cut off: TCP still takes the bytes, nothing comes back."""

    def data_received(self, data):
        pass


def test_silent_next_hop_is_unreachable_and_every_packet_counted(run, net):
    async def main():
        loop = asyncio.get_running_loop()
        a = await net.node(1, **FAST_PROBES)
        hole_keys = packet.NodeKeys.from_seed(bytes([9]) * 32)
        server = await loop.create_server(_BlackHole, "127.0.0.1", 0)
        net.resolver.add(hole_keys.node_id, *server.sockets[0].getsockname()[:2])
        try:
            route = [a.keys.info(), hole_keys.info()]
            first = [packet.build_packet(route, MAILBOX, b"a%d" % i).packet for i in range(30)]
            await send_frames(a.address, first)
            await wait_for(lambda: a.links.packets_out == 30, what="written to the hole")
            await wait_for(lambda: a.stats()["links"].get(hole_keys.node_id.hex())
                           == "unreachable", what="declared unreachable")
            assert a.stats()["unreachable"].get("probe_timeout", 0) >= 1
            # never acknowledged: every packet written is unconfirmed
            assert a.stats()["link_drops"] == {"unconfirmed": 30}
            # while unreachable, new packets are dropped and counted at once
            more = [packet.build_packet(route, MAILBOX, b"b%d" % i).packet for i in range(20)]
            await send_frames(a.address, more)
            await wait_for(lambda: sum(a.stats()["link_drops"].values()) == 50,
                           what="every packet counted")
            drops = a.stats()["link_drops"]
            assert drops["unconfirmed"] + drops.get("link_down", 0) \
                + drops.get("link_lost", 0) == 50
            await wait_for(lambda: a.arena.nfree == a.arena.nslots, what="slots back")
        finally:
            server.close()
            await net.stop()

    run(main())


def test_link_up_after_ack_then_draining_next_hop(run, net):
    async def main():
        a = await net.node(1, **FAST_PROBES)
        b = await net.node(2, **FAST_PROBES)
        try:
            await send_frames(a.address, [build([a, b], b"x").packet])
            await wait_for(lambda: b.mailboxes.count(MAILBOX) == 1, what="delivery")
            await wait_for(lambda: a.links.probes_acked >= 2, what="acks")
            assert a.stats()["links"] == {b.node_id.hex(): "up"}
            leaving = asyncio.get_running_loop().create_task(b.leave(grace_s=30))
            await wait_for(lambda: a.stats()["links"] == {b.node_id.hex(): "draining"},
                           what="DRAINING reaches the upstream link")
            # still forwarding to it while it drains
            await send_frames(a.address, [build([a, b], b"y").packet])
            await wait_for(lambda: b.mailboxes.count(MAILBOX) == 2, what="delivery")
            b.cut_grace()
            await leaving
            assert a.stats()["link_drops"] == {}
        finally:
            await net.stop()

    run(main())


def test_idle_flood_from_one_address_never_stops_another_client(run, net):
    async def main():
        loop = asyncio.get_running_loop()
        a = await net.node(1, first_frame_timeout_s=1.0)
        b = await net.node(2)
        flood = []

        async def connect_one():
            sock = socket.socket()
            sock.setblocking(False)
            sock.bind(("127.0.0.2", 0))
            flood.append(sock)
            try:
                await loop.sock_connect(sock, a.address)
            except OSError:
                pass

        try:
            await asyncio.gather(*(connect_one() for _ in range(1000)))
            cap = a.config.max_connections_per_source
            await wait_for(lambda: a.refusals["source_cap"] == 1000 - cap, timeout=10,
                           what="flood refused beyond the per-source cap")
            assert a.connection_count == cap
            # a client from another address gets every message through
            frames = [build([a, b], b"c%d" % i).packet for i in range(50)]
            await send_frames(a.address, frames, close=False)
            await wait_for(lambda: b.mailboxes.count(MAILBOX) == 50, what="delivery")
            # the flood's survivors never sent a frame: closed at the first-frame deadline
            await wait_for(lambda: a.refusals["no_first_frame"] == cap, timeout=10,
                           what="idle flood closed")
            stats = a.stats()
            assert stats["refusals"]["source_cap"] == 1000 - cap
            assert stats["refusals"]["total_cap"] == 0
            assert a.arena.nfree == a.arena.nslots
        finally:
            for sock in flood:
                sock.close()
            await net.stop()

    run(main())


def test_leave_under_load_forwards_everything_at_its_delay(run, net):
    async def main():
        a = await net.node(1)
        b = await net.node(2, mean_delay_ms=30, max_delay_ms=150, **FAST_PROBES)
        # Audit b's delay queue: no packet may leave before the deadline it was given.
        deadlines: dict[int, int] = {}
        early = []
        queue = b.delay_queue
        push_keys, on_due = queue.push_keys, queue._on_due

        def audited_push(keys):
            keys = list(keys)
            for key in keys:
                deadlines[key & 0xFFFFFF] = key >> 24
            push_keys(keys)

        def audited_due(slots):
            now = queue.now_us()
            early.extend(s for s in slots if now + 1000 < deadlines[s])  # 1 ms timer slack
            on_due(slots)

        queue.push_keys, queue._on_due = audited_push, audited_due
        try:
            reader, writer = await asyncio.open_connection(*a.address)
            sent = 0

            async def send(count):
                nonlocal sent
                for _ in range(count):
                    writer.write(build([a, b], b"m%d" % sent).packet)
                    sent += 1
                    await writer.drain()
                    await asyncio.sleep(0.002)

            await send(100)
            leaving = asyncio.get_running_loop().create_task(b.leave(grace_s=1.0))
            await send(100)              # during the grace
            # What the upstream still holds needs the grace; once it has all left, close
            # at once, with packets still delayed at b.
            await wait_for(lambda: b.arena.frames_in == sent, what="everything at b")
            b.cut_grace()
            await leaving
            assert b.state == "stopped" and len(b.delay_queue) == 0
            await wait_for(lambda: b.mailboxes.count(MAILBOX) == sent, what="all delivered")
            assert early == []
            assert a.stats()["link_drops"] == {}
            assert b.stats()["rejects"] == {}
            writer.close()
        finally:
            await net.stop()

    run(main())
