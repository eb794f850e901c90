"""End to end through chains of real nodes on 127.0.0.1: 3 and 5 hops, both formats, both
implementations, both event loops; SURB replies; metrics."""

import pytest

from fogcore import packet
from fogcore.mixnet.node_metrics import render

from .conftest import build, send_frames, wait_for

MAILBOX = b"M" * 32


@pytest.mark.parametrize("fmt", ["sphinx", "kem"])
@pytest.mark.parametrize("hops", [3, 5])
def test_chain_delivers_every_packet(run, net, fmt, hops):
    async def main():
        nodes = await net.chain(hops, fmt)
        try:
            messages = [b"message %d" % i for i in range(30)]
            frames = [build(nodes, m, fmt, MAILBOX).packet for m in messages]
            await send_frames(nodes[0].address, frames)
            last = nodes[-1]
            await wait_for(lambda: last.mailboxes.count(MAILBOX) == len(messages),
                           what="delivery")
            got = last.mailboxes.fetch(MAILBOX)
            assert sorted(d.payload for d in got) == sorted(messages)
            assert all(d.kind == packet.Kind.DELIVER for d in got)
            for node in nodes[:-1]:
                s = node.stats()
                assert s["forwarded"] == s["sent"] == len(messages)
                assert s["rejects"] == {} and s["link_drops"] == {}
            for node in nodes:
                await wait_for(lambda n=node: n.arena.nfree == n.arena.nslots,
                               what="every slot back in the arena")
        finally:
            await net.stop()

    run(main())


def test_surb_reply_reaches_the_owner_mailbox(run, net):
    async def main():
        nodes = await net.chain(3, "kem")
        try:
            route = [n.keys.info() for n in nodes]
            owner_box = b"O" * 32
            surb, surb_key = packet.make_surb(route, owner_box, format="kem")
            first_hop, frame = packet.build_reply(surb, b"the answer")
            assert first_hop == nodes[0].node_id
            await send_frames(nodes[0].address, [frame])
            await wait_for(lambda: nodes[-1].mailboxes.count(owner_box) == 1, what="reply")
            (reply,) = nodes[-1].mailboxes.fetch(owner_box)
            assert reply.kind == packet.Kind.REPLY and reply.surb_id is not None
            assert packet.open_reply(surb_key, reply.payload) == b"the answer"
        finally:
            await net.stop()

    run(main())


def test_replayed_and_forged_packets_counted(run, net):
    async def main():
        nodes = await net.chain(2)
        try:
            p = build(nodes, b"once")
            forged = bytearray(p.packet)
            forged[100] ^= 1
            await send_frames(nodes[0].address, [p.packet, p.packet, bytes(forged)])
            await wait_for(lambda: nodes[0].arena.frames_in == 3, what="frames")
            await wait_for(lambda: nodes[1].mailboxes.count(MAILBOX) == 1, what="delivery")
            await wait_for(lambda: len(nodes[0].stats()["rejects"]) == 2, what="rejects")
            assert nodes[0].stats()["rejects"] == {"replay": 1, "bad_mac": 1}
            text = render(nodes[0].registry).decode()
            assert 'fogcore_node_packets_dropped_total{reason="replay"} 1.0' in text
            assert 'fogcore_node_packets_processed_total{kind="forward"} 1.0' in text
            assert "fogcore_node_delay_seconds_count 1.0" in text
            assert "fogcore_node_batch_size_count" in text
        finally:
            await net.stop()

    run(main())


def test_in_loop_processing_gives_the_same_result(run, net):
    async def main():
        nodes = [await net.node(1, process_in_thread=False),
                 await net.node(2, process_in_thread=False)]
        try:
            frames = [build(nodes, b"m%d" % i).packet for i in range(10)]
            await send_frames(nodes[0].address, frames)
            await wait_for(lambda: nodes[1].mailboxes.count(MAILBOX) == 10, what="delivery")
        finally:
            await net.stop()

    run(main())
