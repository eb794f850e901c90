"""The client end to end through an in-process network of real nodes (docs/client.md):
3 and 5 hops in both formats, SURB replies, a node taken down mid-traffic with every
fragment retransmitted on other routes, an unreachable entry node, an exhausted retry
budget, duplicates and malformed input. Every test runs on both packet implementations
(the nodes' `process_packet`) and both event loops."""

import asyncio
import os

import pytest
from conftest import load_impl

from fogcore.mixnet.client import (
    REPLY_CAPACITY,
    Address,
    ClientConfig,
    DeliveryFailed,
    LoopbackNetwork,
    MessageTooLong,
    MixClient,
    Transport,
    chunk_size,
    encode_data,
    encode_drop,
    encode_loop,
    surb_size,
)
from fogcore.mixnet.fragment import split_message
from fogcore.mixnet.topology import ENTRY, GATEWAY, MIX
from fogcore.packet import MESSAGE_CAPACITY, make_surb


def make_network(impl_mode, **kwargs) -> LoopbackNetwork:
    backend = load_impl(impl_mode, "_batch")
    return LoopbackNetwork(backend=backend, **kwargs)


def fast_config(fmt="sphinx", **kwargs) -> ClientConfig:
    values = dict(format=fmt, poll_interval=0.005, ack_timeout=0.4, min_timeout=0.1,
                  max_timeout=2.0)
    values.update(kwargs)
    return ClientConfig(**values)


def pair(net, config):
    gateways = net.layer(GATEWAY)
    alice = MixClient(net.topology(), net, gateways[0], config=config)
    bob = MixClient(net.topology(), net, gateways[-1], config=config)
    return alice, bob


def test_sizes():
    assert surb_size("sphinx") == 363 and surb_size("kem") == 523
    assert chunk_size("sphinx") == MESSAGE_CAPACITY - 3 - 363 - 30 == 1634
    assert chunk_size("kem") == 1474
    assert isinstance(LoopbackNetwork(layer_sizes=(1, 1, 1), gateways=1), Transport)
    address = Address(b"g" * 32, b"m" * 32)
    assert Address.parse(str(address)) == address
    with pytest.raises(ValueError):
        Address.parse("nodot")
    with pytest.raises(ValueError):
        Address(b"g" * 31, b"m" * 32)


@pytest.mark.parametrize("fmt", ["sphinx", "kem"])
@pytest.mark.parametrize("hops", [3, 5])
def test_end_to_end_with_reply(run, impl_mode, fmt, hops):
    net = make_network(impl_mode, format=fmt, seed=b"e2e", mean_delay_us=500)
    alice, bob = pair(net, fast_config(fmt, hops=hops))
    message = os.urandom(3 * chunk_size(fmt) + 17)  # four fragments

    async def main():
        async with alice, bob:
            sent = await alice.send(bob.address, message, want_reply=True)
            got = await bob.receive(5)
            assert got.kind == "message" and got.data == message
            assert got.message_id == sent.message_id and sent.fragments == 4
            await bob.reply(got.reply_surb, b"thanks " * 10)
            answer = await alice.receive(5)
            assert answer.kind == "reply" and answer.data == b"thanks " * 10
            assert answer.surb_id == sent.reply_surb_id
            # A short message without a reply SURB, and an empty one.
            await alice.send(bob.address, b"")
            assert (await bob.receive(5)).data == b""
            # The SURB is single use: a second reply is refused at its first hop.
            await bob.reply(got.reply_surb, b"again")
            await net.drain()
            await asyncio.sleep(0.05)
            with pytest.raises(TimeoutError):
                await alice.receive(0.05)
        assert net.stats["reject_replay"] == 1
        assert alice.stats["fragments_lost"] == 0 and alice.stats["messages_delivered"] == 2
        assert bob.stats["acks_sent"] == 5 and alice.stats["acks_received"] == 5
        # Every packet crossed the planned number of hops.
        assert net.stats["processed"] == hops * (5 + 5 + 1 + 1) - (hops - 1)

    run(main())
    net.close()


def test_node_down_mid_traffic_is_routed_around(run, impl_mode):
    # Delays long enough that packets are inside the network when the node goes down.
    net = make_network(impl_mode, seed=b"drop", mean_delay_us=20_000, max_delay_us=60_000)
    config = fast_config(ack_timeout=0.5, max_timeout=1.5, max_in_flight=12, max_attempts=6)
    alice, bob = pair(net, config)
    messages = [os.urandom(5 * chunk_size("sphinx")) for _ in range(3)]
    victim = net.layer(MIX)[0]

    async def main():
        async with alice, bob:
            sends = [asyncio.ensure_future(alice.send(bob.address, m)) for m in messages]
            await asyncio.sleep(0.08)
            net.set_down(victim)
            await asyncio.gather(*sends)
            received = {(await bob.receive(10)).data for _ in messages}
            assert received == set(messages)

    run(main())
    net.close()
    assert net.stats["lost_at_down_node"] > 0
    assert alice.stats["fragments_lost"] > 0
    assert alice.stats["retransmissions"] >= alice.stats["fragments_lost"]
    assert alice.stats["messages_delivered"] == 3 and alice.stats["messages_failed"] == 0


def test_unreachable_entry_node(run, impl_mode):
    net = make_network(impl_mode, seed=b"entry", layer_sizes=(2, 2, 2))
    alice, bob = pair(net, fast_config())
    dead, alive = net.layer(ENTRY)
    net.set_down(dead)

    async def main():
        async with alice, bob:
            for _ in range(6):
                await alice.send(bob.address, b"hello")
                assert (await bob.receive(5)).data == b"hello"

    run(main())
    net.close()
    # At most one refused connection: then the client avoids the node.
    assert alice.stats["send_errors"] <= 1 and alice.stats["messages_delivered"] == 6
    if alice.stats["send_errors"]:
        assert alice.topology.is_suspect(dead) and alice.stats["entry_refused"] == 1


def test_retry_budget_runs_out(run, impl_mode):
    net = make_network(impl_mode, seed=b"budget")
    alice, bob = pair(net, fast_config(ack_timeout=0.1, min_timeout=0.05, max_timeout=0.2,
                                       max_attempts=3))

    async def main():
        # Bob never polls: no fragment is ever acknowledged.
        await alice.start()
        with pytest.raises(DeliveryFailed) as failure:
            await alice.send(bob.address, os.urandom(2 * chunk_size("sphinx") - 2))
        await alice.stop()
        assert failure.value.missing == [0, 1]

    run(main())
    net.close()
    assert alice.stats["messages_failed"] == 1
    assert alice.stats["fragments_sent"] == 6 and alice.stats["fragments_lost"] == 6
    assert alice.stats["retransmissions"] == 4


def test_duplicates_are_acknowledged_but_delivered_once(run, impl_mode):
    net = make_network(impl_mode, seed=b"dup")
    alice, bob = pair(net, fast_config())

    async def main():
        (fragment,) = split_message(b"\x00\x00once", 100)
        route = alice.route(bob.gateway)
        for _ in range(2):
            ack_route = alice.route(alice.gateway)
            surb, _ = make_surb(ack_route.infos, alice.mailbox, "sphinx")
            await alice.send_packet(route, bob.mailbox, encode_data(surb.to_bytes(),
                                                                    fragment.encode()))
            await net.drain()
            await bob.poll()
        assert (await bob.receive(1)).data == b"once"
        with pytest.raises(TimeoutError):
            await bob.receive(0.05)

    run(main())
    net.close()
    assert bob.stats["duplicate_fragments"] == 1 and bob.stats["acks_sent"] == 2
    assert bob.stats["messages_received"] == 1


def test_malformed_and_stray_input_is_counted(run, impl_mode):
    net = make_network(impl_mode, seed=b"junk")
    alice, bob = pair(net, fast_config())

    async def main():
        route = alice.route(bob.gateway)
        junk = [b"", b"\x09rubbish", b"\x01\x00", b"\x01\x00\x00" + b"\x07" * 40,
                b"\x02short", encode_loop(os.urandom(16)), encode_drop()]
        for message in junk:
            await alice.send_packet(route, bob.mailbox, message)
        await net.drain()
        assert await bob.poll() == len(junk)
        with pytest.raises(MessageTooLong):
            await bob.reply(None, b"x" * (REPLY_CAPACITY + 1))
        small = MixClient(net.topology(), net, bob.gateway,
                          config=fast_config(max_message_bytes=100))
        with pytest.raises(MessageTooLong):
            await small.send(alice.address, b"x" * 200)

    run(main())
    net.close()
    assert bob.stats["bad_items"] == 5
    assert bob.stats["loops_received"] == 1 and bob.stats["drops_received"] == 1
    assert bob.stats["messages_received"] == 0
