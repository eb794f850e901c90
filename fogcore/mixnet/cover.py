"""Loopix cover traffic and loop-based auditing of the nodes' VRF delays
(docs/client.md §5 and §6).

Two independent Poisson streams of real packets: loops, which travel a full route back to
the client's own mailbox, and drops, which go to a random mailbox at a random gateway and
are discarded there. A returning loop tells the client its end-to-end latency; the
`DelayAuditor` compares it, once the nodes have published their epoch proofs, with the sum
of the delays the VRF fixed for that packet at every hop.

What this can and cannot show is written in docs/client.md §6: the client sees one
latency per loop, never a single hop's delay, so a failed loop blames its whole route and
reputation builds up statistically; only a bad or missing proof blames one node at once.
"""

from __future__ import annotations

import asyncio
import enum
import math
import os
import random
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from fogcore import delays, vrf
from fogcore.mixnet.client import (
    Evidence,
    MixClient,
    TransportError,
    encode_drop,
    encode_loop,
)
from fogcore.mixnet.topology import NoRoute

__all__ = [
    "AuditResult",
    "AuditVerdict",
    "CoverTraffic",
    "DelayAuditor",
    "LoopRecord",
    "NodeReputation",
    "ProofSource",
    "poisson_gaps",
]

LOOP_ID_SIZE = 16


def poisson_gaps(rate: float, rng: random.Random) -> Iterator[float]:
    """Endless gaps (seconds) between the events of a Poisson process of `rate` per
    second: independent exponential draws of mean 1/rate."""
    if not rate > 0 or math.isinf(rate):
        raise ValueError("a Poisson rate must be positive and finite")
    while True:
        yield rng.expovariate(rate)


@dataclass(frozen=True, slots=True)
class LoopRecord:
    """A loop that came back: its route (node ids, gateway last), the replay tag each hop
    reported, and wall-clock times of sending and of arriving in the mailbox."""

    loop_id: bytes
    route: tuple[bytes, ...]
    tags: tuple[bytes, ...]
    sent_at: float
    returned_at: float

    @property
    def latency(self) -> float:
        """Seconds from sending to arrival in the mailbox."""
        return self.returned_at - self.sent_at


class ProofSource(Protocol):
    """Where published epoch proofs and the nodes' VRF keys come from (`LoopbackNetwork`;
    a directory client that verifies the descriptors it lists)."""

    async def epoch_proof(self, node_id: bytes, epoch: int) -> bytes | None:
        """The node's proof for a finished delay epoch, None when it has none."""

    async def vrf_key(self, node_id: bytes) -> bytes | None:
        """The VRF public key of the node's verified descriptor (docs/directory.md, version
        2), None when the node is unknown. Proofs verify under this key, never under the
        node id (the identity key)."""


class AuditVerdict(enum.Enum):
    """The result of auditing one loop."""

    PASS = "pass"  # latency within tolerance of the sum of the audited delays
    LATE = "late"  # longer than the delays allow: some hop held or lost time
    EARLY = "early"  # shorter than the delays allow: some hop skipped its delay
    BAD_PROOF = "bad_proof"  # a node's published proof does not verify
    NO_PROOF = "no_proof"  # a node published no proof within the grace period
    UNAUDITABLE = "unauditable"  # the loop spanned more than two epochs


@dataclass(frozen=True, slots=True)
class AuditResult:
    """One audited loop: the verdict, the observed latency, the expected sum of delays
    closest to it (seconds) and, for proof faults, the node at fault."""

    verdict: AuditVerdict
    observed: float
    expected: float | None = None
    node: bytes | None = None


@dataclass(slots=True)
class NodeReputation:
    """What the audits found about one node."""

    loops_passed: int = 0
    loops_failed: int = 0  # loops through this node that were LATE or EARLY
    bad_proofs: int = 0
    missing_proofs: int = 0
    hops_passed: int = 0  # exact per-hop audits (`DelayAuditor.audit_hop`)
    hops_failed: int = 0

    @property
    def score(self) -> float:
        """Share of this node's audited loops and hops that passed (1.0 with no data);
        every proof fault counts as a failure."""
        good = self.loops_passed + self.hops_passed
        bad = self.loops_failed + self.hops_failed + self.bad_proofs + self.missing_proofs
        return 1.0 if good + bad == 0 else good / (good + bad)


_INVALID = bytes(1)  # cache marker (not a 64-byte output): the proof did not verify


class DelayAuditor:
    """Audits returned loops against the nodes' published VRF epoch proofs.

    A node delays each forwarded packet by `fogcore.delays` (mean `mean_us`, cap `max_us`,
    epochs of `epoch_seconds`); the gateway, the last hop, delivers without delay. A loop
    passes when `expected - early_slack × hops <= latency <= expected + tolerance`, where
    `expected` is the sum of its hops' delays and `hops` the number of delaying hops: a
    node's delay queue may release a packet up to a timer tick early (uvloop keeps time in
    milliseconds, docs/node.md §5), once per hop. When the loop crossed an epoch boundary the
    hops before it used the earlier epoch and those after it the later one; every split is
    tried. Loops wait in a bounded queue until their epochs' proofs are due; a proof still
    missing `proof_grace` seconds after its epoch ended counts against its node.
    """

    def __init__(
        self,
        proofs: ProofSource,
        *,
        mean_us: int,
        max_us: int,
        epoch_seconds: float,
        tolerance: float = 0.05,
        early_slack: float = 0.002,
        proof_grace: float = 30.0,
        max_pending: int = 1024,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.proofs = proofs
        self.mean_us = mean_us
        self.max_us = max_us
        self.epoch_seconds = epoch_seconds
        self.tolerance = tolerance
        self.early_slack = early_slack
        self.proof_grace = proof_grace
        self._clock = clock
        self._pending: deque[LoopRecord] = deque(maxlen=max_pending)
        self._proofs: OrderedDict[tuple[bytes, int], bytes] = OrderedDict()
        self.reputation: dict[bytes, NodeReputation] = {}
        self.verdicts: Counter[AuditVerdict] = Counter()
        self.results: deque[AuditResult] = deque(maxlen=1024)

    def epoch_of(self, t: float) -> int:
        """The delay epoch of wall time `t`."""
        return int(t // self.epoch_seconds)

    def _rep(self, node: bytes) -> NodeReputation:
        return self.reputation.setdefault(node, NodeReputation())

    def submit(self, record: LoopRecord) -> None:
        """Queue a returned loop for auditing (the oldest is dropped when full)."""
        self._pending.append(record)

    @property
    def pending(self) -> int:
        """Loops waiting for their epochs' proofs."""
        return len(self._pending)

    async def audit_due(self) -> list[AuditResult]:
        """Audit every queued loop whose epochs are over; keep the rest queued."""
        now_epoch = self.epoch_of(self._clock())
        results, keep = [], deque(maxlen=self._pending.maxlen)
        while self._pending:
            record = self._pending.popleft()
            if self.epoch_of(record.returned_at) >= now_epoch:
                keep.append(record)
                continue
            result = await self.audit(record)
            if result is None:
                keep.append(record)  # a proof is not published yet, within its grace
            else:
                results.append(result)
        self._pending = keep
        return results

    async def _proof(self, node: bytes, epoch: int) -> bytes | None:
        """The node's verified epoch output (`beta`), `_INVALID` for a bad proof, None
        when none is published (or the node has no known VRF key to check it with)."""
        cached = self._proofs.get((node, epoch))
        if cached is not None:
            return cached
        proof = await self.proofs.epoch_proof(node, epoch)
        if proof is None:
            return None
        key = await self.proofs.vrf_key(node)
        if key is None:
            return None
        try:
            beta = vrf.verify(key, proof, delays.epoch_alpha(epoch))
        except vrf.InvalidProof:
            beta = _INVALID
        self._proofs[(node, epoch)] = beta
        if len(self._proofs) > 4096:
            self._proofs.popitem(last=False)
        return beta

    def _record(self, result: AuditResult, nodes: tuple[bytes, ...]) -> AuditResult:
        self.verdicts[result.verdict] += 1
        self.results.append(result)
        if result.verdict is AuditVerdict.PASS:
            for node in nodes:
                self._rep(node).loops_passed += 1
        elif result.verdict in (AuditVerdict.LATE, AuditVerdict.EARLY):
            for node in nodes:
                self._rep(node).loops_failed += 1
        elif result.verdict is AuditVerdict.BAD_PROOF:
            self._rep(result.node).bad_proofs += 1
        elif result.verdict is AuditVerdict.NO_PROOF:
            self._rep(result.node).missing_proofs += 1
        return result

    async def audit(self, record: LoopRecord) -> AuditResult | None:
        """Audit one loop now; None when a proof is missing but still within its grace."""
        observed = record.latency
        delayed = record.route[:-1]  # the gateway delivers without a delay
        first, last = self.epoch_of(record.sent_at), self.epoch_of(record.returned_at)
        if last - first > 1:
            return self._record(AuditResult(AuditVerdict.UNAUDITABLE, observed), ())
        epochs = sorted({first, last})
        hop_delays: list[dict[int, int]] = []
        for node, tag in zip(delayed, record.tags, strict=False):
            per_epoch = {}
            for epoch in epochs:
                beta = await self._proof(node, epoch)
                if beta is None:
                    overdue = (epoch + 1) * self.epoch_seconds + self.proof_grace
                    if self._clock() < overdue:
                        return None
                    return self._record(AuditResult(AuditVerdict.NO_PROOF, observed,
                                                    node=node), ())
                if beta == _INVALID:
                    return self._record(AuditResult(AuditVerdict.BAD_PROOF, observed,
                                                    node=node), ())
                per_epoch[epoch] = delays.delay_us(beta, tag, self.mean_us, self.max_us)
            hop_delays.append(per_epoch)
        # The hops before the boundary used `first`, the rest `last` (one split per hop).
        splits = range(len(hop_delays) + 1) if first != last else (0,)
        sums = [
            sum(h[first] for h in hop_delays[:k]) + sum(h[last] for h in hop_delays[k:])
            for k in splits
        ]
        expected = [s / 1e6 for s in sums]
        best = min(expected, key=lambda e: abs(observed - e))
        early = self.early_slack * len(delayed)
        if any(e - early <= observed <= e + self.tolerance for e in expected):
            verdict = AuditVerdict.PASS
        elif all(observed < e - early for e in expected):
            verdict = AuditVerdict.EARLY
        else:
            verdict = AuditVerdict.LATE
        return self._record(AuditResult(verdict, observed, best), delayed)

    async def audit_hop(self, node: bytes, epoch: int, tag: bytes,
                        claimed_delay_us: int) -> bool | None:
        """Exact audit of one hop whose applied delay is known (a node's own report of the
        delay it gave the packet with `tag`, as in a dispute): `fogcore.delays.audit`
        against the published proof. True or False is recorded in the node's reputation;
        None when no proof is published; a bad proof counts as `bad_proofs` and is False."""
        proof = await self.proofs.epoch_proof(node, epoch)
        key = await self.proofs.vrf_key(node)
        if proof is None or key is None:
            return None
        try:
            ok = delays.audit(key, epoch, proof, tag, claimed_delay_us, self.mean_us,
                              self.max_us)
        except vrf.InvalidProof:
            self._rep(node).bad_proofs += 1
            return False
        rep = self._rep(node)
        if ok:
            rep.hops_passed += 1
        else:
            rep.hops_failed += 1
        return ok


@dataclass(slots=True)
class _Outstanding:
    route: tuple[bytes, ...]
    tags: tuple[bytes, ...]
    sent_at: float
    deadline: float = field(default=0.0)
    sent_mono: float = field(default=0.0)  # monotonic, for the client's health evidence


class CoverTraffic:
    """Loop and drop streams for one `MixClient`, each a Poisson process (`loop_rate`,
    `drop_rate` packets per second; 0 turns a stream off).

    Returned loops are timed (`latencies`) and handed to `auditor` when given; loops not
    back within `loop_timeout` seconds count as lost. Both feed the client's suspicion of
    the loop's mix nodes (`MixClient.report`): a loop back clears them, a lost one raises
    them. `stats` counts sends, returns, losses and errors; `loops_sent_via` and
    `loops_returned_via` count loops per node of their routes (gateway included)."""

    def __init__(
        self,
        client: MixClient,
        *,
        loop_rate: float = 1.0,
        drop_rate: float = 1.0,
        loop_timeout: float = 30.0,
        auditor: DelayAuditor | None = None,
        rng: random.Random | None = None,
        random_bytes: Callable[[int], bytes] = os.urandom,
        max_outstanding: int = 4096,
    ) -> None:
        if loop_rate < 0 or drop_rate < 0:
            raise ValueError("cover rates cannot be negative")
        self.client = client
        self.loop_rate = loop_rate
        self.drop_rate = drop_rate
        self.loop_timeout = loop_timeout
        self.auditor = auditor
        self._rng = rng or random.SystemRandom()
        self._random = random_bytes
        self._max_outstanding = max_outstanding
        self._outstanding: OrderedDict[bytes, _Outstanding] = OrderedDict()
        self._tasks: list[asyncio.Task] = []
        self.stats: Counter[str] = Counter()
        self.latencies: deque[float] = deque(maxlen=10_000)
        self.loops_sent_via: Counter[bytes] = Counter()
        self.loops_returned_via: Counter[bytes] = Counter()
        # Loops counted lost, remembered for a while so that a late one is known as late.
        self._expired: OrderedDict[bytes, _Outstanding] = OrderedDict()
        client.loop_handler = self._loop_returned

    async def start(self) -> None:
        """Start the streams whose rate is above zero."""
        if self._tasks:
            return
        loop = asyncio.get_running_loop()
        for rate, send in ((self.loop_rate, self.send_loop), (self.drop_rate, self.send_drop)):
            if rate > 0:
                self._tasks.append(loop.create_task(self._stream(rate, send)))

    async def stop(self) -> None:
        """Stop both streams."""
        tasks, self._tasks = list(self._tasks), []
        for task in tasks:
            task.cancel()
        # The streams' own cancellations come back as results; a cancellation of the caller
        # of stop() still propagates to it.
        await asyncio.gather(*tasks, return_exceptions=True)

    async def __aenter__(self) -> CoverTraffic:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def _stream(self, rate: float, send: Callable) -> None:
        loop = asyncio.get_running_loop()
        # An absolute schedule, so the time spent building and sending a packet does not
        # stretch the gaps and lower the rate.
        due = loop.time()
        for gap in poisson_gaps(rate, self._rng):
            due += gap
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            await send()

    async def send_loop(self) -> bytes | None:
        """Send one loop through a full route back to the client's own mailbox; its loop
        id, or None when it could not be sent (counted)."""
        self.expire_loops()
        try:
            route = self.client.route(self.client.gateway)
        except NoRoute:
            self.stats["no_route"] += 1
            return None
        loop_id = self._random(LOOP_ID_SIZE)
        sent_at, sent_mono = time.time(), time.monotonic()
        try:
            built = await self.client.send_packet(route, self.client.mailbox,
                                                  encode_loop(loop_id, self._random))
        except TransportError:
            self.stats["send_errors"] += 1
            return None
        while len(self._outstanding) >= self._max_outstanding:
            self._outstanding.popitem(last=False)
            self.stats["loops_lost"] += 1
        self._outstanding[loop_id] = _Outstanding(route.node_ids, built.tags, sent_at,
                                                  sent_at + self.loop_timeout, sent_mono)
        self.loops_sent_via.update(route.node_ids)
        self.stats["loops_sent"] += 1
        return loop_id

    async def send_drop(self) -> None:
        """Send one drop: a full route to a random mailbox at a random gateway."""
        try:
            gateway = self.client.topology.random_gateway()
            route = self.client.route(gateway.node_id)
        except NoRoute:
            self.stats["no_route"] += 1
            return
        try:
            await self.client.send_packet(route, self._random(32), encode_drop(self._random))
        except TransportError:
            self.stats["send_errors"] += 1
            return
        self.stats["drops_sent"] += 1

    def expire_loops(self) -> int:
        """Count loops overdue by `loop_timeout` as lost; return how many."""
        now = time.time()
        expired = [lid for lid, o in self._outstanding.items() if o.deadline <= now]
        for lid in expired:
            lost = self._outstanding.pop(lid)
            self.client.report(Evidence.LOOP_LOST, lost.route[:-1], lost.sent_mono)
            self._expired[lid] = lost
            if len(self._expired) > self._max_outstanding:
                self._expired.popitem(last=False)
        self.stats["loops_lost"] += len(expired)
        return len(expired)

    @property
    def outstanding(self) -> int:
        """Loops sent and not yet back nor expired."""
        return len(self._outstanding)

    def _loop_returned(self, loop_id: bytes, received_at: float) -> None:
        sent = self._outstanding.pop(loop_id, None)
        if sent is None:
            late = self._expired.pop(loop_id, None)
            if late is None:
                self.stats["unknown_loops"] += 1
                return
            # Counted lost already; its nodes did work, only slowly.
            self.stats["loops_late"] += 1
            self.client.report(Evidence.LOOP_RETURNED, late.route[:-1], late.sent_mono)
            return
        self.stats["loops_returned"] += 1
        self.loops_returned_via.update(sent.route)
        self.client.report(Evidence.LOOP_RETURNED, sent.route[:-1], sent.sent_mono)
        record = LoopRecord(loop_id, sent.route, sent.tags, sent.sent_at, received_at)
        self.latencies.append(record.latency)
        if self.auditor is not None:
            self.auditor.submit(record)
