"""Reachability of the directory's nodes, learnt by probing them (docs/directory.md §5).

`ReachabilityProber` keeps one TCP connection to the packet port of every listed node,
writes a PROBE control frame (fogcore.mixnet.control) on it every `interval_s` and checks
the signed PROBE_ACKs that come back. A node with no valid acknowledgement for
`unreachable_after_s` (failed connects, timeouts and silence all count) is recorded as
`unreachable` in the directory; a valid acknowledgement makes it `up` again, or
`draining` when the node says it is leaving.

One owner task does the periodic work (re-reading the listing, writing probes, judging
and recording states); connection attempts run as short helper tasks it starts and
bounds. Everything is bounded: the connect time, the wait for an acknowledgement, the
reconnect backoff (capped, so a node that comes back is seen within seconds), the number
of nodes probed and of connects in flight.

The prober talks to the directory through a `DirectoryRepository`-like object
(`list(states=None, limit=, offset=)`, `set_state(node_id, state, ack_at=)`), so it
needs no HTTP and can be tested against any store.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter
from prometheus_client.core import GaugeMetricFamily

from fogcore.mixnet.control import (
    DRAINING,
    NONCE_SIZE,
    PROBE_ACK,
    ControlError,
    ControlMessage,
    ControlReader,
    encode_probe,
    verify_control,
)
from fogcore.mixnet.resolver import split_address

__all__ = ["FAILURE_REASONS", "PROBED_STATES", "ProbeMetrics", "ProbeSettings",
           "ReachabilityProber", "is_loopback"]

log = logging.getLogger("fogcore.reachability")

#: what a failure counter's `reason` label says
FAILURE_REASONS = (
    "refused",          # the connect was refused (nothing listens)
    "connect_timeout",  # no connection within connect_timeout_s
    "connect_error",    # another connect error (no route, bad name, ...)
    "ack_timeout",      # a probe went unanswered for ack_timeout_s; the connection is dropped
    "closed",           # the node closed the connection
    "bad_frame",        # the node wrote something that is not a control frame
    "bad_ack",          # an acknowledgement not signed by the listed node
    "stale_ack",        # a signed acknowledgement of no probe in flight (ignored)
    "address",          # the address may not be probed (loopback only) or does not parse
)
#: states the prober records
PROBED_STATES = ("up", "unreachable", "draining")
_ALL_STATES = ("unknown", *PROBED_STATES)


def is_loopback(host: str) -> bool:
    """True for an IP literal in a loopback range (127.0.0.0/8, ::1); names are not."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class ProbeSettings:
    """How often and how patiently nodes are probed."""

    interval_s: float = 1.0
    unreachable_after_s: float = 5.0
    connect_timeout_s: float = 1.0
    #: a probe unanswered this long drops the connection (a fresh one gets through as soon
    #: as the path works again, where the old one would wait for TCP's retransmit backoff)
    ack_timeout_s: float = 2.0
    backoff_min_s: float = 0.1
    backoff_max_s: float = 1.0
    #: how often the directory's listing is read again
    refresh_s: float = 2.0
    #: most nodes probed (the first ones in listing order) and connects in flight
    max_nodes: int = 2000
    max_connecting: int = 64
    #: skip (and log once) every address that is not a loopback IP literal
    loopback_only: bool = False

    def __post_init__(self) -> None:
        if self.interval_s <= 0 or self.unreachable_after_s <= 0:
            raise ValueError("probe interval and unreachable_after_s must be positive")
        if self.connect_timeout_s <= 0 or self.ack_timeout_s <= 0:
            raise ValueError("probe timeouts must be positive")
        if not 0 < self.backoff_min_s <= self.backoff_max_s:
            raise ValueError("need 0 < backoff_min_s <= backoff_max_s")
        if self.max_nodes < 1 or self.max_connecting < 1:
            raise ValueError("max_nodes and max_connecting must be at least 1")


class ProbeMetrics:
    """Prometheus metrics of a prober, registered on `registry`."""

    def __init__(self, registry: CollectorRegistry | None = None,
                 states: Callable[[], dict[str, int]] | None = None):
        self.registry = registry if registry is not None else CollectorRegistry()
        self.probes = Counter("fogcore_directory_probes_sent",
                              "PROBE frames written to directory nodes",
                              registry=self.registry)
        self.acks = Counter("fogcore_directory_probe_acks",
                            "Valid PROBE_ACKs received from directory nodes",
                            registry=self.registry)
        self.failures = Counter("fogcore_directory_probe_failures",
                                "Failed connects, unanswered probes and bad answers, by reason",
                                ("reason",), registry=self.registry)
        for reason in FAILURE_REASONS:
            self.failures.labels(reason)
        self._states = states or dict
        self.registry.register(self)

    def close(self) -> None:
        """Remove these metrics from the registry (a prober started again registers anew)."""
        for collector in (self.probes, self.acks, self.failures, self):
            self.registry.unregister(collector)

    def collect(self):
        """The nodes-by-state gauge (the registry's collector interface)."""
        gauge = GaugeMetricFamily("fogcore_directory_nodes",
                                  "Nodes probed by the directory, by recorded state",
                                  labels=("state",))
        counts = self._states()
        for state in _ALL_STATES:
            gauge.add_metric((state,), counts.get(state, 0))
        yield gauge


@dataclass(eq=False)
class _Target:
    """One probed node: its connection and what its answers said."""

    node_id: str
    key: bytes
    address: str
    host: str = ""
    port: int = 0
    allowed: bool = True
    stored: str = "unknown"
    watched_since: float = 0.0
    transport: asyncio.Transport | None = None
    connecting: asyncio.Task | None = None
    next_connect_at: float = 0.0
    backoff: float = 0.0
    #: nonce → monotonic time sent, oldest first
    outstanding: dict[bytes, float] = field(default_factory=dict)
    last_ack: float | None = None
    last_ack_wall: float | None = None
    said: str = "up"
    #: (state, listing generation) of a write the store refused: retried after a re-read
    refused: tuple[str, int] | None = None
    closing: bool = False


class _ProbeProtocol(asyncio.Protocol):
    """The prober's end of one connection: splits the node's answers into messages."""

    def __init__(self, prober: ReachabilityProber, target: _Target):
        self.prober = prober
        self.target = target
        self.reader = ControlReader()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            messages = self.reader.feed(data)
        except ControlError:
            self.prober._drop(self.target, "bad_frame")
            return
        for message in messages:
            if self.target.transport is not self.transport:
                return  # dropped while handling an earlier message
            self.prober._answer(self.target, message)

    def connection_lost(self, exc) -> None:
        self.prober._lost(self.target, self.transport)


class ReachabilityProber:
    """Probes every node `directory` lists and records their states in it; `on_change`
    (node id, old state, new state) is called after each recorded change (e.g. to drop
    cached listings).

    `await start()` begins, `await stop()` ends and closes every connection."""

    def __init__(self, directory, settings: ProbeSettings | None = None, *,
                 registry: CollectorRegistry | None = None, clock=time.monotonic,
                 wall=time.time, on_change: Callable[[str, str, str], None] | None = None):
        self.directory = directory
        self.on_change = on_change
        self.settings = settings or ProbeSettings()
        self._clock = clock
        self._wall = wall
        self._targets: dict[str, _Target] = {}
        self.metrics = ProbeMetrics(registry, self.state_counts)
        self._metrics_open = True
        self._generation = 0
        self._next_refresh = 0.0
        self._refused_addresses: set[str] = set()
        self._capped = False
        self._task: asyncio.Task | None = None
        self._connects: set[asyncio.Task] = set()

    # -- life cycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Start the owner task."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop probing and close every connection."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        for connect in list(self._connects):
            connect.cancel()
        await asyncio.gather(*self._connects, return_exceptions=True)
        for target in self._targets.values():
            self._close(target)
        self._targets.clear()
        if self._metrics_open:
            self._metrics_open = False
            self.metrics.close()

    def states(self) -> dict[str, str]:
        """node id → the state last recorded (or read) for each probed node."""
        return {t.node_id: t.stored for t in self._targets.values()}

    def state_counts(self) -> dict[str, int]:
        """Probed nodes per recorded state."""
        counts: dict[str, int] = {}
        for target in self._targets.values():
            counts[target.stored] = counts.get(target.stored, 0) + 1
        return counts

    async def _run(self) -> None:
        interval = self.settings.interval_s
        while True:
            started = self._clock()
            try:
                if started >= self._next_refresh:
                    await self._refresh()
                    self._next_refresh = started + self.settings.refresh_s
                now = self._clock()
                for target in list(self._targets.values()):
                    self._tick(target, now)
                await self._record(self._clock())
            except asyncio.CancelledError:
                raise
            except Exception:
                # A store hiccup must not end probing; the next round tries again.
                log.exception("probing round failed")
            await asyncio.sleep(max(0.0, interval - (self._clock() - started)))

    # -- the listing ---------------------------------------------------------------------

    async def _refresh(self) -> None:
        cap = self.settings.max_nodes
        nodes: list = []
        while len(nodes) < cap:
            page = await self.directory.list(limit=min(1000, cap - len(nodes)),
                                             offset=len(nodes))
            nodes += page
            if len(page) < 1000:
                break
        more = len(nodes) >= cap and bool(await self.directory.list(limit=1, offset=cap))
        if more and not self._capped:
            log.warning("the directory lists more than %d nodes; probing the first %d",
                        cap, cap)
        self._capped = more
        self._generation += 1
        now = self._clock()
        seen = set()
        for node in nodes:
            seen.add(node.node_id)
            target = self._targets.get(node.node_id)
            if target is not None and target.address != node.address:
                self._forget(target)  # re-registered elsewhere: start afresh
                target = None
            if target is None:
                target = self._target(node, now)
                self._targets[node.node_id] = target
            target.stored = node.state
        for node_id in [n for n in self._targets if n not in seen]:
            self._forget(self._targets[node_id])

    def _target(self, node, now: float) -> _Target:
        target = _Target(node.node_id, bytes(node.identity_key), node.address,
                         watched_since=now)
        try:
            target.host, target.port = split_address(node.address)
        except ValueError:
            target.allowed = False
        if target.allowed and self.settings.loopback_only and not is_loopback(target.host):
            target.allowed = False
        if not target.allowed and node.address not in self._refused_addresses:
            self._refused_addresses.add(node.address)
            self.metrics.failures.labels("address").inc()
            log.warning("not probing node %s at %s: %s", node.node_id[:16], node.address,
                        "only loopback addresses may be probed"
                        if self.settings.loopback_only else "the address does not parse")
        return target

    def _forget(self, target: _Target) -> None:
        self._targets.pop(target.node_id, None)
        if target.connecting is not None:
            target.connecting.cancel()
        self._close(target)

    # -- probing -------------------------------------------------------------------------

    def _tick(self, target: _Target, now: float) -> None:
        if not target.allowed:
            return
        if target.transport is not None:
            oldest = next(iter(target.outstanding.values()), None)
            if oldest is not None and now - oldest >= self.settings.ack_timeout_s:
                self._drop(target, "ack_timeout")
            else:
                self._probe(target, now)
                return
        if (target.connecting is None and now >= target.next_connect_at
                and len(self._connects) < self.settings.max_connecting):
            task = asyncio.get_running_loop().create_task(self._connect(target))
            target.connecting = task
            self._connects.add(task)
            task.add_done_callback(self._connects.discard)

    def _probe(self, target: _Target, now: float) -> None:
        nonce = os.urandom(NONCE_SIZE)
        # Acks come back in order; more than a timeout's worth in flight means trouble
        # the ack timeout will act on, so the oldest are forgotten.
        while len(target.outstanding) >= 16:
            del target.outstanding[next(iter(target.outstanding))]
        target.outstanding[nonce] = now
        target.transport.write(encode_probe(nonce))
        self.metrics.probes.inc()

    async def _connect(self, target: _Target) -> None:
        loop = asyncio.get_running_loop()
        reason = None
        try:
            async with asyncio.timeout(self.settings.connect_timeout_s):
                transport, _ = await loop.create_connection(
                    lambda: _ProbeProtocol(self, target), target.host, target.port)
        except TimeoutError:
            reason = "connect_timeout"
        except ConnectionRefusedError:
            reason = "refused"
        except OSError:
            reason = "connect_error"
        finally:
            target.connecting = None
        if reason is not None:
            self.metrics.failures.labels(reason).inc()
            self._back_off(target)
            return
        if self._targets.get(target.node_id) is not target:
            transport.close()  # forgotten while connecting
            return
        target.transport = transport
        target.closing = False
        target.outstanding.clear()
        self._probe(target, self._clock())

    def _back_off(self, target: _Target) -> None:
        s = self.settings
        target.backoff = min(s.backoff_max_s, max(s.backoff_min_s, target.backoff * 2))
        target.next_connect_at = self._clock() + target.backoff

    def _answer(self, target: _Target, message: ControlMessage) -> None:
        try:
            verify_control(message, target.key)
        except ControlError:
            self._drop(target, "bad_ack")
            return
        if message.kind == DRAINING:
            target.said = "draining"
            return
        if message.kind != PROBE_ACK or message.nonce not in target.outstanding:
            self.metrics.failures.labels("stale_ack").inc()
            return
        # TCP keeps order: probes sent before the answered one will not be answered now.
        while target.outstanding:
            nonce = next(iter(target.outstanding))
            del target.outstanding[nonce]
            if nonce == message.nonce:
                break
        self.metrics.acks.inc()
        target.last_ack = self._clock()
        target.last_ack_wall = self._wall()
        target.said = "draining" if message.draining else "up"
        target.backoff = 0.0

    def _drop(self, target: _Target, reason: str) -> None:
        """Count a failure and close the connection (a fresh one is tried after backoff)."""
        self.metrics.failures.labels(reason).inc()
        self._close(target)
        self._back_off(target)

    def _close(self, target: _Target) -> None:
        transport, target.transport = target.transport, None
        target.outstanding.clear()
        if transport is not None:
            target.closing = True
            transport.close()

    def _lost(self, target: _Target, transport) -> None:
        if target.transport is not transport or transport is None:
            return  # closed by us (already counted) or a stale connection
        self.metrics.failures.labels("closed").inc()
        target.transport = None
        target.outstanding.clear()
        self._back_off(target)

    # -- judging and recording -----------------------------------------------------------

    def _judge(self, target: _Target, now: float) -> str | None:
        limit = self.settings.unreachable_after_s
        if target.last_ack is not None and now - target.last_ack < limit:
            return target.said
        if now - target.watched_since >= limit:
            return "unreachable"
        return None  # too early to say

    async def _record(self, now: float) -> None:
        for target in list(self._targets.values()):
            if not target.allowed:
                continue
            state = self._judge(target, now)
            if state is None or state == target.stored:
                continue
            if target.refused == (state, self._generation):
                continue
            node = await self.directory.set_state(target.node_id, state,
                                                  ack_at=target.last_ack_wall)
            if node is None:
                # Gone, or leaving by a signed announcement: ask again after a re-read.
                target.refused = (state, self._generation)
                continue
            before, target.stored = target.stored, node.state
            if self.on_change is not None:
                self.on_change(target.node_id, before, node.state)
            level = logging.WARNING if state == "unreachable" or before == "unreachable" \
                else logging.INFO
            log.log(level, "node %s at %s: %s -> %s", target.node_id[:16], target.address,
                    before, node.state)
