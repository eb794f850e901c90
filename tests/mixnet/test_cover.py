"""Loopix cover traffic and loop-based delay auditing (docs/client.md §5, §6): Poisson
gaps and stream rates (fixed seeds, loose bounds), loops returning through real nodes,
drops reaching random mailboxes, and audits that pass honest nodes and catch nodes that
hold packets, skip their delays or publish bad proofs. Both packet implementations, both
event loops."""

import asyncio
import math
import random
import statistics

import pytest
from conftest import load_impl

from fogcore import delays, vrf
from fogcore.mixnet.client import ClientConfig, LoopbackNetwork, MixClient
from fogcore.mixnet.cover import (
    AuditVerdict,
    CoverTraffic,
    DelayAuditor,
    poisson_gaps,
)
from fogcore.mixnet.topology import GATEWAY, MIX


def make_network(impl_mode, **kwargs) -> LoopbackNetwork:
    return LoopbackNetwork(backend=load_impl(impl_mode, "_batch"), **kwargs)


def client_of(net: LoopbackNetwork) -> MixClient:
    config = ClientConfig(format=net.format, poll_interval=0.005)
    return MixClient(net.topology(), net, net.layer(GATEWAY)[0], config=config)


def test_poisson_gaps_statistics():
    gaps = poisson_gaps(5.0, random.Random(1234))
    sample = [next(gaps) for _ in range(20000)]
    assert statistics.fmean(sample) == pytest.approx(0.2, rel=0.03)
    assert statistics.pstdev(sample) == pytest.approx(0.2, rel=0.05)  # exponential: sd = mean
    # Counts in unit windows are Poisson(5): mean and variance both about 5.
    t, counts, window = 0.0, [], 0
    edge = 1.0
    for gap in sample:
        t += gap
        while t >= edge:
            counts.append(window)
            window, edge = 0, edge + 1.0
        window += 1
    assert statistics.fmean(counts) == pytest.approx(5.0, rel=0.05)
    assert statistics.pvariance(counts) == pytest.approx(5.0, rel=0.15)
    for bad in (0.0, -1.0, math.inf):
        with pytest.raises(ValueError):
            next(poisson_gaps(bad, random.Random()))


def test_streams_run_at_their_rates(run, impl_mode):
    net = make_network(impl_mode, seed=b"rates", mean_delay_us=1000)
    client = client_of(net)
    cover = CoverTraffic(client, loop_rate=40.0, drop_rate=20.0, rng=random.Random(99))

    async def main():
        async with client:
            await cover.start()
            await asyncio.sleep(1.5)
            await cover.stop()
            await net.drain()
            await asyncio.sleep(0.05)
            await client.poll()

    run(main())
    net.close()
    # 60 loops and 30 drops expected; the bounds are about four standard deviations.
    assert 30 <= cover.stats["loops_sent"] <= 95
    assert 10 <= cover.stats["drops_sent"] <= 55
    assert cover.stats["loops_returned"] == cover.stats["loops_sent"]
    assert cover.outstanding == 0 and len(cover.latencies) == cover.stats["loops_returned"]
    assert client.stats["loops_received"] == cover.stats["loops_returned"]
    # Drops end in random mailboxes at the gateways, never in the client's.
    assert net.stats["delivered"] == cover.stats["loops_sent"] + cover.stats["drops_sent"]
    assert client.stats["drops_received"] == 0


def _loops_then_audit(run, net, *, auditor_source=None, loops=40, tolerance=0.08, **kw):
    """Send `loops` loops at once, wait for them and for their epochs to end, audit."""
    client = client_of(net)
    auditor = DelayAuditor(auditor_source or net, mean_us=net.mean_delay_us,
                           max_us=net.max_delay_us, epoch_seconds=net.epoch_seconds,
                           tolerance=tolerance, **kw)
    cover = CoverTraffic(client, loop_rate=0, drop_rate=0, auditor=auditor)

    async def main():
        async with client:
            for _ in range(loops):
                await cover.send_loop()
                await asyncio.sleep(0.01)
            await net.drain()
            await asyncio.sleep(0.03)
        assert cover.stats["loops_returned"] == loops
        await asyncio.sleep(net.epoch_seconds)  # every epoch used is now over
        return await auditor.audit_due()

    results = run(main())
    net.close()
    return auditor, results


@pytest.mark.timing
def test_honest_nodes_pass_the_audit(run, impl_mode):
    net = make_network(impl_mode, seed=b"honest", mean_delay_us=5000, epoch_seconds=0.4,
                       trace=True)
    auditor, results = _loops_then_audit(run, net)
    assert len(results) == 40 and auditor.pending == 0
    assert auditor.verdicts[AuditVerdict.PASS] == 40
    assert all(rep.score == 1.0 for rep in auditor.reputation.values())
    for result in results:
        # Three delaying hops, each of which may fire a timer tick early.
        assert result.expected <= result.observed + 3 * auditor.early_slack

    # Exact per-hop audits where the applied delay is known: every one verifies, and a
    # delay off by one microsecond does not.
    async def hops():
        checked = 0
        for node, epoch, tag, applied in list(net.trace)[:30]:
            assert await auditor.audit_hop(node, epoch, tag, applied) is True
            assert await auditor.audit_hop(node, epoch, tag, applied + 1) is False
            checked += 1
        return checked

    assert run(hops()) == 30


def test_a_node_holding_packets_is_caught(run, impl_mode):
    net = make_network(impl_mode, seed=b"late", mean_delay_us=2000, epoch_seconds=0.4)
    bad = net.layer(MIX)[0]
    net.set_misbehaviour(bad, extra_delay_us=150_000)
    auditor, results = _loops_then_audit(run, net, loops=45)
    through_bad = auditor.reputation[bad]
    assert through_bad.loops_failed > 0 and through_bad.loops_passed == 0
    assert auditor.verdicts[AuditVerdict.LATE] == through_bad.loops_failed
    assert auditor.verdicts[AuditVerdict.EARLY] == 0
    worst = min(auditor.reputation, key=lambda n: auditor.reputation[n].score)
    assert worst == bad
    honest = [rep.score for node, rep in auditor.reputation.items() if node != bad]
    assert statistics.fmean(honest) > 0.5 and min(honest) > 0


def test_a_node_skipping_its_delays_is_caught(run, impl_mode):
    # The node is alone in its layer, so every loop crosses it: a skipped delay shows as
    # an early loop unless the delay drawn was shorter than the loop's processing time.
    net = make_network(impl_mode, seed=b"early", layer_sizes=(3, 1, 3), mean_delay_us=60_000,
                       max_delay_us=300_000, epoch_seconds=1.0)
    (bad,) = net.layer(MIX)
    net.set_misbehaviour(bad, ignore_delay=True)
    auditor, _ = _loops_then_audit(run, net, loops=25, tolerance=0.25)
    rep = auditor.reputation[bad]
    assert rep.loops_failed > rep.loops_passed
    # Failures are early ones; one late loop is allowed for a host stall over 0.25 s.
    assert auditor.verdicts[AuditVerdict.LATE] <= 1
    assert auditor.verdicts[AuditVerdict.EARLY] == rep.loops_failed - auditor.verdicts[AuditVerdict.LATE]


class Relaying:
    """A proof source passing on the network's proofs and VRF keys; subclasses falsify
    what one node publishes."""

    def __init__(self, net, node):
        self.net, self.node = net, node

    async def epoch_proof(self, node_id, epoch):
        return await self.net.epoch_proof(node_id, epoch)

    async def vrf_key(self, node_id):
        return await self.net.vrf_key(node_id)


class WrongEpochProofs(Relaying):
    """For one node, its proof of another epoch: a real proof that does not verify for the
    epoch asked about."""

    async def epoch_proof(self, node_id, epoch):
        if node_id == self.node:
            return self.net._epoch_delays(self.net.nodes[node_id], epoch + 1000).proof
        return await self.net.epoch_proof(node_id, epoch)


class IdentityKeyProofs(Relaying):
    """One node proves its epochs with its identity seed, as version 1 nodes did: the proof
    is well formed but does not verify under the VRF key of its descriptor."""

    async def epoch_proof(self, node_id, epoch):
        if node_id == self.node:
            if await self.net.epoch_proof(node_id, epoch) is None:
                return None
            seed = self.net.nodes[node_id].keys.identity_seed
            return vrf.prove(seed, delays.epoch_alpha(epoch))
        return await self.net.epoch_proof(node_id, epoch)


class Withholding(Relaying):
    """One node never publishes."""

    async def epoch_proof(self, node_id, epoch):
        if node_id == self.node:
            return None
        return await self.net.epoch_proof(node_id, epoch)


class UnknownKey(Relaying):
    """The source knows no VRF key for one node (no verified descriptor): its proofs
    cannot be checked, which counts as missing once the grace is over."""

    async def vrf_key(self, node_id):
        return None if node_id == self.node else await self.net.vrf_key(node_id)


@pytest.mark.parametrize("source, verdict, counter", [
    (WrongEpochProofs, AuditVerdict.BAD_PROOF, "bad_proofs"),
    (IdentityKeyProofs, AuditVerdict.BAD_PROOF, "bad_proofs"),
    (Withholding, AuditVerdict.NO_PROOF, "missing_proofs"),
    (UnknownKey, AuditVerdict.NO_PROOF, "missing_proofs"),
])
def test_proof_faults_blame_one_node(run, impl_mode, source, verdict, counter):
    net = make_network(impl_mode, seed=b"proofs", mean_delay_us=1000, epoch_seconds=0.3,
                       layer_sizes=(1, 1, 1), gateways=1)
    bad = net.layer(MIX)[0]
    auditor, results = _loops_then_audit(run, net, auditor_source=source(net, bad), loops=5,
                                         proof_grace=0.0)
    assert [r.verdict for r in results] == [verdict] * 5
    assert all(r.node == bad for r in results)
    assert getattr(auditor.reputation[bad], counter) == 5 and auditor.reputation[bad].score == 0


def test_loops_that_never_return_count_as_lost(run, impl_mode):
    net = make_network(impl_mode, seed=b"lost", layer_sizes=(1, 1, 1), gateways=1)
    client = client_of(net)
    cover = CoverTraffic(client, loop_rate=0, drop_rate=0, loop_timeout=0.1)

    async def main():
        net.set_down(net.layer(MIX)[0])
        for _ in range(3):
            await cover.send_loop()
        await asyncio.sleep(0.15)
        assert cover.expire_loops() == 3

    run(main())
    net.close()
    assert cover.stats["loops_lost"] == 3 and cover.outstanding == 0
