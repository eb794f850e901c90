"""Hostile and awkward input over real sockets: malformed, oversized, truncated and
trickled (slowloris) frames, frames split at every kind of boundary, many idle
connections, the connection limit and the per-connection rate limit."""

import asyncio

import pytest

from .conftest import build, closed_by_peer, send_frames, wait_for

MAILBOX = b"M" * 32


@pytest.mark.parametrize(
    "prefix,reason",
    [
        (bytes([9, 1]) + (2346).to_bytes(2, "big"), "bad_version"),
        (bytes([1, 2]) + (2506).to_bytes(2, "big"), "bad_format"),   # kem at a sphinx node
        (bytes([1, 1]) + (65535).to_bytes(2, "big"), "wrong_size"),  # oversized
        (bytes([1, 1]) + (2000).to_bytes(2, "big"), "wrong_size"),
    ],
)
def test_malformed_frame_drops_the_connection(run, net, prefix, reason):
    async def main():
        nodes = await net.chain(2)
        try:
            good = build(nodes, b"before").packet
            reader, writer = await send_frames(nodes[0].address, [good, prefix + bytes(3000)],
                                               close=False)
            assert await closed_by_peer(reader)
            writer.close()
            await wait_for(lambda: nodes[0].stats()["rejects"] == {reason: 1}, what="reject")
            await wait_for(lambda: nodes[1].mailboxes.count(MAILBOX) == 1, what="delivery")
            # the node still serves other connections
            await send_frames(nodes[0].address, [build(nodes, b"after").packet])
            await wait_for(lambda: nodes[1].mailboxes.count(MAILBOX) == 2, what="delivery")
        finally:
            await net.stop()

    run(main())


def test_truncated_frame_is_counted(run, net):
    async def main():
        nodes = await net.chain(2)
        try:
            frame = build(nodes, b"x").packet
            await send_frames(nodes[0].address, [frame[:1234]])
            await wait_for(lambda: nodes[0].stats()["rejects"] == {"truncated": 1},
                           what="truncated")
            await wait_for(lambda: nodes[0].arena.nfree == nodes[0].arena.nslots,
                           what="slot freed")
        finally:
            await net.stop()

    run(main())


def test_frames_split_at_odd_boundaries(run, net):
    async def main():
        nodes = await net.chain(2, "kem")
        try:
            stream = b"".join(build(nodes, b"m%d" % i, "kem").packet for i in range(6))
            reader, writer = await asyncio.open_connection(*nodes[0].address)
            cuts = [1, 3, 4, 5, 2509, 2510, 2511, 4000, 5020, 5021, 7529, 9000, len(stream)]
            last = 0
            for cut in cuts:
                writer.write(stream[last:cut])
                await writer.drain()
                await asyncio.sleep(0.002)   # separate reads on the node's side
                last = cut
            await wait_for(lambda: nodes[1].mailboxes.count(MAILBOX) == 6, what="delivery")
            assert nodes[0].stats()["rejects"] == {}
            writer.close()
        finally:
            await net.stop()

    run(main())


def test_slowloris_connection_is_dropped(run, net):
    async def main():
        nodes = [await net.node(1, frame_timeout_s=0.3), await net.node(2)]
        try:
            frame = build(nodes, b"slow").packet
            reader, writer = await asyncio.open_connection(*nodes[0].address)
            closed = False
            for i in range(0, 200, 10):          # 10 bytes every 50 ms: far too slow
                try:
                    writer.write(frame[i:i + 10])
                    await writer.drain()
                except ConnectionError:
                    closed = True
                    break
                await asyncio.sleep(0.05)
                if reader.at_eof():
                    closed = True
                    break
            if not closed:
                assert await closed_by_peer(reader)
            await wait_for(lambda: nodes[0].stats()["rejects"] == {"slow": 1}, what="slow")
            writer.close()
        finally:
            await net.stop()

    run(main())


def test_many_idle_connections_then_traffic(run, net):
    async def main():
        nodes = [await net.node(1, max_connections=200, max_connections_per_source=0),
                 await net.node(2)]
        try:
            conns = [await asyncio.open_connection(*nodes[0].address) for _ in range(200)]
            await wait_for(lambda: nodes[0].connection_count == 200, what="200 connections")
            extra = [await asyncio.open_connection(*nodes[0].address) for _ in range(5)]
            await wait_for(lambda: nodes[0].refused_connections == 5, what="refusals")
            for reader, _ in extra:
                assert await closed_by_peer(reader)
            # idle connections hold no slot: the whole arena is free
            assert nodes[0].arena.nfree == nodes[0].arena.nslots
            # one of the idle connections sends a packet: it goes through
            reader, writer = conns[17]
            writer.write(build(nodes, b"through").packet)
            await writer.drain()
            await wait_for(lambda: nodes[1].mailboxes.count(MAILBOX) == 1, what="delivery")
            for _, w in conns + extra:
                w.close()
            await wait_for(lambda: nodes[0].connection_count == 0, what="closed")
        finally:
            await net.stop()

    run(main())


def test_idle_timeout_closes_connections(run, net):
    async def main():
        nodes = [await net.node(1, idle_timeout_s=0.2, frame_timeout_s=0.2)]
        try:
            reader, writer = await asyncio.open_connection(*nodes[0].address)
            assert await closed_by_peer(reader)
            assert nodes[0].stats()["idle_closed"] == 1
            writer.close()
        finally:
            await net.stop()

    run(main())


def test_rate_limit_pauses_the_peer_and_loses_nothing(run, net):
    async def main():
        nodes = [await net.node(1, peer_rate=200, peer_burst=5), await net.node(2)]
        try:
            frames = [build(nodes, b"r%d" % i).packet for i in range(40)]
            await send_frames(nodes[0].address, frames)
            await wait_for(lambda: nodes[1].mailboxes.count(MAILBOX) == 40, what="delivery")
            assert nodes[0].stats()["rate_pauses"] >= 1
            assert nodes[0].stats()["rejects"] == {}
        finally:
            await net.stop()

    run(main())
