"""Control frames at a node's listener (docs/node.md §16): probes are answered with signed
acks carrying the node's state, at most a few per second per connection; frames that
only travel the other way close the connection; the leave is announced to the
directory with a signed body."""

import asyncio
import time

import httpx
import pytest

from fogcore.mixnet.control import (
    CONTROL_FRAME_SIZE,
    DRAINING,
    PROBE_ACK,
    ControlError,
    ControlReader,
    ControlSigner,
    encode_probe,
    verify_control,
    verify_leave,
)
from fogcore.mixnet.publisher import Publisher

from .conftest import wait_for


async def read_controls(reader, count: int, timeout: float = 5.0):
    """Read `count` control frames from `reader`."""
    stream = ControlReader()
    out = []
    async with asyncio.timeout(timeout):
        while len(out) < count:
            data = await reader.read(4096)
            assert data, "connection closed"
            out += stream.feed(data)
    return out


def test_probe_answered_with_signed_ack_and_state(run, net):
    async def main():
        node = await net.node(1)
        try:
            reader, writer = await asyncio.open_connection(*node.address)
            writer.write(encode_probe(b"n" * 16))
            (ack,) = await read_controls(reader, 1)
            assert ack.kind == PROBE_ACK and ack.nonce == b"n" * 16 and not ack.draining
            verify_control(ack, node.node_id)
            leaving = asyncio.get_running_loop().create_task(node.leave(grace_s=30))
            await wait_for(lambda: node.state == "draining", what="draining")
            (note,) = await read_controls(reader, 1)       # told without asking
            assert note.kind == DRAINING
            verify_control(note, node.node_id)
            writer.write(encode_probe(b"m" * 16))
            (ack,) = await read_controls(reader, 1)
            assert ack.nonce == b"m" * 16 and ack.draining
            verify_control(ack, node.node_id)
            # a newcomer during the grace is accepted and told at once
            r2, w2 = await asyncio.open_connection(*node.address)
            (note,) = await read_controls(r2, 1)
            assert note.kind == DRAINING
            node.cut_grace()
            await leaving
            assert node.state == "stopped" and node.stats()["probes_answered"] == 2
            writer.close()
            w2.close()
        finally:
            await net.stop()

    run(main())


def test_probes_beyond_the_rate_are_dropped_and_counted(run, net):
    async def main():
        node = await net.node(1)
        try:
            reader, writer = await asyncio.open_connection(*node.address)
            writer.write(b"".join(encode_probe() for _ in range(40)))
            await wait_for(lambda: node.probes_answered + node.probe_limited == 40,
                           what="40 probes handled")
            # a burst of 4, plus what the bucket refilled meanwhile (4 per second)
            assert 4 <= node.probes_answered < 10
            assert node.stats()["probe_limited"] == 40 - node.probes_answered
            acks = await read_controls(reader, node.probes_answered)
            assert all(a.kind == PROBE_ACK for a in acks)
            writer.close()
        finally:
            await net.stop()

    run(main())


@pytest.mark.parametrize("kind", ["ack", "draining", "garbage"])
def test_frames_for_the_other_direction_close_the_connection(run, net, kind):
    async def main():
        node = await net.node(1)
        other = ControlSigner(b"o" * 32)
        frame = {"ack": other.ack(b"x" * 16, 0), "draining": other.draining(),
                 "garbage": encode_probe()[:4] + b"\x09" * 116}[kind]
        try:
            reader, writer = await asyncio.open_connection(*node.address)
            writer.write(frame)
            async with asyncio.timeout(5):
                while await reader.read(4096):
                    pass
            assert node.stats()["control_errors"] == 1
            assert node.arena.nfree == node.arena.nslots and node.stats()["rejects"] == {}
            writer.close()
        finally:
            await net.stop()

    run(main())


def test_leave_signature_round_trip():
    signer = ControlSigner(b"s" * 32)
    at = int(time.time())
    sig = signer.leave(at)
    verify_leave(signer.node_id, at, sig, now=at + 10)
    with pytest.raises(ControlError):
        verify_leave(signer.node_id, at + 1, sig, now=at)
    with pytest.raises(ControlError):
        verify_leave(signer.node_id, at, sig, now=at + 1000)


def test_publisher_announces_the_leave(run, net):
    async def main():
        node = await net.node(1)
        posts = []

        def handler(request: httpx.Request) -> httpx.Response:
            posts.append((request.url.path, request.content))
            return httpx.Response(200, json={})

        client = httpx.AsyncClient(transport=httpx.MockTransport(handler),
                                   base_url="http://directory")
        publisher = Publisher(node, "http://directory", "key", address="127.0.0.1:1",
                              client=client)
        try:
            await publisher.start()
            await node.leave(grace_s=0.05)
            await publisher.stop()
            path = f"/api/directory/nodes/{node.node_id.hex()}/leave"
            bodies = [body for p, body in posts if p == path]
            assert len(bodies) == 1 and publisher.stats["left"] == 1
            body = httpx.Response(200, content=bodies[0]).json()
            assert set(body) == {"at", "signature"} and isinstance(body["at"], int)
            verify_leave(node.node_id, body["at"], bytes.fromhex(body["signature"]),
                         now=time.time())
        finally:
            await client.aclose()
            await net.stop()

    run(main())


def test_control_frame_size():
    assert CONTROL_FRAME_SIZE == 120
