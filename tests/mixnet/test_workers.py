"""Scaling across cores: the thread-split policy, a node whose batches run on two GIL-free
threads (every packet delivered, a replay on another connection still caught, because the
one filter is shared), and node processes sharing a port with SO_REUSEPORT."""

import asyncio

import pytest

from fogcore.mixnet.config import ConfigError, load_config
from fogcore.mixnet.workers import (
    MIN_FRAMES_PER_THREAD,
    NodeProcess,
    batch_threads,
    start_process_group,
)

from .conftest import TEST_SETTINGS, build, send_frames, wait_for

MAILBOX = b"M" * 32


def test_batch_threads_policy():
    assert batch_threads(1, 1000) == 1
    assert batch_threads(2, 1) == 1
    assert batch_threads(2, 2 * MIN_FRAMES_PER_THREAD - 1) == 1
    assert batch_threads(2, 2 * MIN_FRAMES_PER_THREAD) == 2
    assert batch_threads(2, 256) == 2
    assert batch_threads(8, 3 * MIN_FRAMES_PER_THREAD) == 3


def test_workers_setting_is_checked():
    assert load_config(env={}, workers=2).workers == 2
    assert load_config(env={"FOGCORE_NODE_WORKERS": "2"}).workers == 2
    for bad in (0, 9):
        with pytest.raises(ConfigError):
            load_config(env={}, workers=bad)


@pytest.mark.parametrize("fmt", ["sphinx", "kem"])
def test_two_worker_threads_deliver_everything(run, net, fmt):
    async def main():
        a = await net.node(1, fmt, workers=2, max_batch=128)
        b = await net.node(2, fmt, workers=2)
        try:
            frames = [build([a, b], b"w%d" % i, fmt=fmt).packet for i in range(120)]
            await send_frames(a.address, frames)
            await wait_for(lambda: b.mailboxes.count(MAILBOX) == 120, timeout=20,
                           what="every packet delivered")
            got = {d.payload for d in b.mailboxes.fetch(MAILBOX)}
            assert got == {b"w%d" % i for i in range(120)}
            assert a.stats()["rejects"] == {}
        finally:
            await net.stop()

    run(main())


def test_replay_on_another_connection_is_caught_with_two_workers(run, net):
    async def main():
        a = await net.node(1, workers=2)
        b = await net.node(2)
        try:
            frames = [build([a, b], b"r%d" % i).packet for i in range(40)]
            # the same 40 packets on two connections at once: each accepted exactly once
            await asyncio.gather(send_frames(a.address, frames),
                                 send_frames(a.address, frames))
            await wait_for(lambda: a.arena.frames_in == 80, what="frames in")
            await wait_for(lambda: a.stats()["rejects"].get("replay") == 40, what="replays")
            await wait_for(lambda: b.mailboxes.count(MAILBOX) == 40, what="deliveries")
        finally:
            await net.stop()

    run(main())


def test_node_process_and_reuse_port_group():
    settings = dict(TEST_SETTINGS, format="kem")
    single = NodeProcess(load_config(env={}, **settings))
    try:
        host, port = single.start()
        assert port > 0 and single.stats()["frames_in"] == 0
        single.clear_replay()
    finally:
        final = single.stop()
    assert final["frames_in"] == 0
    group = start_process_group(settings, 2)
    try:
        ports = {proc.address[1] for proc in group}
        assert len(ports) == 1                      # one port, two processes
        assert len({proc.pid for proc in group}) == 2
    finally:
        for proc in group:
            proc.stop()
