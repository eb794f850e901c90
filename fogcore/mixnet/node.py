"""The mix node: TCP listener → frame parser → batch processor → VRF delay → delay queue →
per-next-hop links (or the gateway's mailboxes). docs/node.md describes the design.

Packets live in arena slots from the read that brings them in until the write that sends
them on has been flushed: the batch processor works on them in place (in a worker thread,
with the GIL released by the compiled backend), the delay queue and the links pass slot
numbers around, and the outgoing transport writes views of the same memory.
"""

import asyncio
import concurrent.futures
import logging
import time
from collections import Counter, deque

from fogcore import packet, replay
from fogcore.delays import EpochDelays
from fogcore.mixnet.config import NodeConfig
from fogcore.mixnet.control import STATE_DRAINING, STATE_UP, ControlSigner
from fogcore.mixnet.delay_queue import DelayQueue
from fogcore.mixnet.keystore import KeyStore
from fogcore.mixnet.links import Links, Resolver, StaticResolver
from fogcore.mixnet.mailbox import Delivery, MailboxStore
from fogcore.mixnet.node_metrics import (
    BATCH_BUCKETS,
    PROCESSING_BUCKETS_S,
    REASON_NAMES,
    BucketHistogram,
    node_registry,
)
from fogcore.mixnet.protocol import frames_module, protocol_class
from fogcore.mixnet.workers import MIN_FRAMES_PER_THREAD

__all__ = ["MixNode"]

log = logging.getLogger("fogcore.node")

KIND_FORWARD, KIND_DELIVER, KIND_REPLY, KIND_REJECT = 1, 2, 3, 4
REASON_BAD_MAC = 5
#: why incoming connections were refused or closed early (`stats()["refusals"]`)
REFUSAL_REASONS = ("total_cap", "source_cap", "no_first_frame", "idle", "draining")


class _KeyEpoch:
    """One routing-key epoch: the keys and the replay filter that lives as long as they."""

    __slots__ = ("epoch", "keys", "replay_filter")

    def __init__(self, epoch: int, keys, replay_filter):
        self.epoch = epoch
        self.keys = keys
        self.replay_filter = replay_filter


class MixNode:
    """One mix node (or gateway) serving `config`.

    `impl` picks the framing and packet implementation: "c", "py" or None (the one
    `fogcore._impl` selects). `resolver` maps next-hop node ids to addresses (default: the
    static `peers` table of the config). `await start()`, then `await stop()` (or
    `leave()`) to leave the network without losing an accepted packet (docs/node.md §16).
    """

    def __init__(self, config: NodeConfig, *, keystore: KeyStore | None = None,
                 resolver: Resolver | None = None, impl: str | None = None, clock=time.time):
        self.config = config
        self.keystore = keystore or KeyStore(config.keys_file or None,
                                             key_epoch_s=config.key_epoch_s,
                                             overlap_s=config.key_overlap_s, clock=clock)
        self.node_id = self.keystore.node_id
        self.resolver = resolver or StaticResolver(config.peer_table())
        self.mailboxes = MailboxStore(config.mailbox_boxes, config.mailbox_depth)
        self._frames = frames_module(impl)
        self._protocol_cls = protocol_class(self._frames)
        if impl == "py":
            from fogcore.packet import _batch_py

            self._process_batch = _batch_py.process_batch
            self._filter_cls = replay.ReplayFilterPy
        else:
            self._process_batch = packet.process_batch
            self._filter_cls = replay.ReplayFilter
        self._clock = clock
        self._format_code = packet.FORMATS[config.format]
        self._sizes = {self._format_code: packet.FRAME_SIZES[config.format]}
        self._mean_us = int(config.mean_delay_ms * 1000)
        self._max_us = int(config.max_delay_ms * 1000)
        self.delay_bounds_us = self._frames.DELAY_BUCKETS_US
        self.arena = None
        self.links: Links | None = None
        self.delay_queue: DelayQueue | None = None
        self.address: tuple[str, int] | None = None
        self.batch_sizes = BucketHistogram(BATCH_BUCKETS)
        self.processing = BucketHistogram(PROCESSING_BUCKETS_S)
        self.processing_per_packet = BucketHistogram(PROCESSING_BUCKETS_S)
        self.registry = node_registry(self)
        #: incoming connections refused or closed early, by reason (REFUSAL_REASONS)
        self.refusals: Counter[str] = Counter({reason: 0 for reason in REFUSAL_REASONS})
        self.rate_pauses = 0
        #: "up", then "draining" from `leave()` on, "stopped" once it returns
        self.state = "up"
        self.control_signer = ControlSigner(self.keystore.identity_seed)
        self.probes_answered = 0
        self.probe_limited = 0
        self.control_errors = 0
        self._per_source: Counter[str] = Counter()
        self._source_of: dict = {}
        self._leave_listeners: list = []
        self._leave_task: asyncio.Task | None = None
        self._grace_cut: asyncio.Event | None = None
        #: (epoch, proof) of finished delay epochs, for publication and audits
        self.published_proofs: deque[tuple[int, bytes]] = deque(maxlen=360)
        self._conns: dict = {}
        self._key: _KeyEpoch | None = None
        self._prev: _KeyEpoch | None = None
        self._delays: EpochDelays | None = None
        self._threads = 1             # batches processed at once (worker threads)
        self._free_lanes: list[int] = [0]
        self._inflight = 0            # batches taken and not yet finished
        self._scheduled = False
        self._stopping = False
        self._loop = None
        self._server = None
        self._executor = None
        self._tick_handle = None
        self._metrics_server = None
        self._mem = None
        self._records = None
        self._stride = 0
        self._record_size = 0

    # -- life cycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Open the listener and start serving."""
        cfg = self.config
        loop = self._loop = asyncio.get_running_loop()
        frames = self._frames
        self.arena = frames.Arena(cfg.arena_slots, cfg.arena_reserve, self._on_ready)
        self._mem = self.arena.memory
        self._records = self.arena.records
        self._stride = frames.STRIDE
        self._record_size = frames.RECORD_BYTES
        self.links = Links(loop, self.arena, self.resolver, queue_limit=cfg.link_queue,
                           max_write=cfg.max_write, connect_timeout=cfg.connect_timeout_s,
                           backoff_base=cfg.backoff_base_s, backoff_max=cfg.backoff_max_s,
                           sndbuf=cfg.link_sndbuf, tcp_timeout=cfg.link_tcp_timeout_s,
                           send_timeout=cfg.send_timeout_s,
                           probe_interval=cfg.probe_interval_s,
                           probe_timeout=cfg.probe_timeout_s)
        self._grace_cut = asyncio.Event()
        self.delay_queue = DelayQueue(loop, self._on_due)
        self._rotate()
        if cfg.process_in_thread:
            # One thread per worker, each running whole batches with the GIL released
            # (the compiled filter is shared with an atomic check-and-add; the pure one is
            # not thread-safe, so the reference runs one batch at a time). One lane more
            # than threads: the next batch already waits when a thread finishes, so no
            # thread idles while the loop accounts a finished batch.
            self._threads = cfg.workers if self._filter_cls is replay.ReplayFilter else 1
            self._free_lanes = list(range(self._threads + 1))
            self._executor = concurrent.futures.ThreadPoolExecutor(
                self._threads, thread_name_prefix="fogcore-batch")
        self._server = await loop.create_server(
            self._make_protocol, cfg.listen_host, cfg.listen_port, reuse_address=True,
            reuse_port=cfg.reuse_port or None,
            backlog=min(cfg.max_connections, 4096))
        self.address = self._server.sockets[0].getsockname()[:2]
        self._tick_handle = loop.call_later(self._tick_interval(), self._tick)
        if cfg.metrics_port:
            from prometheus_client import start_http_server

            self._metrics_server = start_http_server(cfg.metrics_port, cfg.metrics_host,
                                                     registry=self.registry)
        log.info("node %s listening on %s:%d (%s, %s)", self.node_id.hex()[:16],
                 *self.address, cfg.layer, cfg.format)

    async def stop(self) -> None:
        """Leave the network (`leave()` with the configured grace) and stop."""
        await self.leave()

    def add_leave_listener(self, listener) -> None:
        """Call `listener()` (plain function, in the loop) when the node starts to leave;
        the directory publisher announces the leave from there."""
        self._leave_listeners.append(listener)

    def cut_grace(self) -> None:
        """End the leave's grace period now (a second SIGTERM, or SIGINT)."""
        if self._grace_cut is not None:
            self._grace_cut.set()

    async def leave(self, grace_s: float | None = None) -> None:
        """Leave without losing an accepted packet (docs/node.md §16): drain for
        `grace_s` seconds (default `config.leave_grace()`), still accepting, with every
        incoming connection told (DRAINING) and probes answered "draining"; then close
        the listener and the connections, send every packet at its committed delay,
        flush the links and stop. Calling it again waits for the same leave."""
        if self._loop is None:
            return
        if self._leave_task is None:
            grace = self.config.leave_grace() if grace_s is None else grace_s
            self._leave_task = self._loop.create_task(self._leave(grace))
        await asyncio.shield(self._leave_task)

    async def _leave(self, grace: float) -> None:
        loop = self._loop
        cfg = self.config
        self.state = "draining"
        log.info("node %s: leaving, %.1f s of grace", self.node_id.hex()[:16], grace)
        draining = self.control_signer.draining()
        for transport in list(self._conns.values()):
            transport.write(draining)
        for listener in self._leave_listeners:
            try:
                listener()
            except Exception:  # a listener's failure must not stop the leave
                log.exception("leave listener failed")
        if grace > 0:
            try:
                await asyncio.wait_for(self._grace_cut.wait(), grace)
            except TimeoutError:
                pass
        # Closing: no new connection, no new frame; a partial frame was never accepted.
        self._stopping = True
        self._server.close()
        for proto, transport in list(self._conns.items()):
            proto.hold_reading(True)
            transport.close()
        if self._tick_handle is not None:
            self._tick_handle.cancel()
        deadline = loop.time() + cfg.drain_timeout_s
        while (self._inflight or self.arena.ready_count) and loop.time() < deadline:
            await asyncio.sleep(0.002)
        # Every packet leaves at its committed delay, never early: each deadline is at
        # most max_delay after its batch finished, so this wait always suffices.
        delays_done = loop.time() + cfg.max_delay_ms / 1000 + 0.05
        while len(self.delay_queue) and loop.time() < delays_done:
            await asyncio.sleep(0.002)
        if len(self.delay_queue):
            log.error("node %s: %d packets still delayed past max_delay at shutdown",
                      self.node_id.hex()[:16], len(self.delay_queue))
            self.delay_queue.flush()
        try:
            await asyncio.wait_for(self.links.drain(), max(0.05, deadline - loop.time()))
        except TimeoutError:
            log.warning("node %s: links not drained at shutdown", self.node_id.hex()[:16])
        self.links.close()
        self.delay_queue.close()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        if self._metrics_server is not None:
            server, _thread = self._metrics_server
            server.shutdown()
        if self._delays is not None:
            self.published_proofs.append((self._delays.epoch, self._delays.proof))
        self.state = "stopped"
        await asyncio.sleep(0)

    @property
    def control_state(self) -> int:
        """The state a PROBE_ACK carries: STATE_UP, or STATE_DRAINING once leaving."""
        return STATE_UP if self.state == "up" else STATE_DRAINING

    # -- connections ---------------------------------------------------------------------

    def _make_protocol(self):
        cfg = self.config
        return self._protocol_cls(self.arena, self._sizes, cfg.peer_rate, cfg.peer_burst,
                                  owner=self)

    def connection_opened(self, proto, transport) -> None:
        """Called by each incoming connection; enforces the connection caps (total and
        per source address) and tells a newcomer when the node is leaving."""
        cfg = self.config
        peer = transport.get_extra_info("peername")
        source = str(peer[0]) if isinstance(peer, tuple) and peer else ""
        if self._stopping:
            reason = "draining"
        elif len(self._conns) >= cfg.max_connections:
            reason = "total_cap"
        elif cfg.max_connections_per_source and \
                self._per_source[source] >= cfg.max_connections_per_source:
            reason = "source_cap"
        else:
            reason = None
        if reason is not None:
            self.refusals[reason] += 1
            proto.close_now()
            return
        self._conns[proto] = transport
        self._source_of[proto] = source
        self._per_source[source] += 1
        if self.state == "draining":
            transport.write(self.control_signer.draining())

    def connection_closed(self, proto) -> None:
        """Called when an incoming connection ends."""
        if self._conns.pop(proto, None) is not None:
            source = self._source_of.pop(proto)
            self._per_source[source] -= 1
            if self._per_source[source] <= 0:
                del self._per_source[source]

    @property
    def refused_connections(self) -> int:
        """Connections refused on arrival (caps, or the node closing)."""
        r = self.refusals
        return r["total_cap"] + r["source_cap"] + r["draining"]

    @property
    def idle_closed(self) -> int:
        """Connections closed for idleness."""
        return self.refusals["idle"]

    @property
    def connection_count(self) -> int:
        """Open incoming connections."""
        return len(self._conns)

    def _tick_interval(self) -> float:
        cfg = self.config
        bounds = [t for t in (cfg.frame_timeout_s, cfg.first_frame_timeout_s) if t > 0]
        return max(0.01, min([0.5] + [t / 4 for t in bounds]))

    def _tick(self) -> None:
        cfg = self.config
        self._rotate()
        now = time.monotonic()
        for proto in list(self._conns):
            result = proto.check_timeouts(now, cfg.frame_timeout_s, cfg.idle_timeout_s,
                                          cfg.first_frame_timeout_s)
            if result == 2:
                self.refusals["idle"] += 1
            elif result == 3:
                self.refusals["no_first_frame"] += 1
        self._tick_handle = self._loop.call_later(self._tick_interval(), self._tick)

    # -- epochs --------------------------------------------------------------------------

    def _new_filter(self):
        return self._filter_cls(self.config.replay_capacity, self.config.replay_fp_rate)

    def _rotate(self) -> None:
        """Follow the routing-key epoch (with its overlap window) and the delay epoch."""
        t = self._clock()
        ks = self.keystore
        epoch = ks.epoch_at(t)
        old = self._key
        if old is None or old.epoch != epoch:
            self._key = _KeyEpoch(epoch, ks.keys_for(epoch), self._new_filter())
            log.info("node %s: routing key epoch %d", self.node_id.hex()[:16], epoch)
        prev = ks.previous(t)
        if prev is None:
            self._prev = None
        elif self._prev is None or self._prev.epoch != prev[0]:
            if old is not None and old.epoch == prev[0]:
                self._prev = old
            else:
                self._prev = _KeyEpoch(prev[0], prev[1], self._new_filter())
        depoch = int(t // self.config.delay_epoch_s)
        if self._delays is None or self._delays.epoch != depoch:
            if self._delays is not None:
                # The epoch is over: its proof may now be shown to anyone auditing delays.
                self.published_proofs.append((self._delays.epoch, self._delays.proof))
            self._delays = EpochDelays(self.keystore.vrf_secret_key, depoch, self._mean_us,
                                       self._max_us)

    @property
    def keys(self):
        """The routing keys in force (`NodeKeys`)."""
        return self._key.keys

    @property
    def delay_epoch(self) -> EpochDelays:
        """The current delay epoch (its proof stays private until the epoch ends)."""
        return self._delays

    # -- batches -------------------------------------------------------------------------

    def _on_ready(self) -> None:
        if self._free_lanes and not self._scheduled:
            self._scheduled = True
            # Let the rest of this loop iteration's reads join the batch.
            self._loop.call_soon(self._start_batch)

    def _start_batch(self) -> None:
        self._scheduled = False
        arena = self.arena
        max_batch = self.config.max_batch
        while self._free_lanes and arena.ready_count:
            idle = self._threads - self._inflight
            if idle > 1:
                # Spread what is ready over the idle threads rather than give one of them
                # everything (a light load still uses every core).
                share = max(MIN_FRAMES_PER_THREAD, -(-arena.ready_count // idle))
                count = min(max_batch, share)
            else:
                count = max_batch
            lane = self._free_lanes.pop()
            runs = arena.take_batch(count, lane)
            self._inflight += 1
            self._submit(lane, runs)

    def _submit(self, lane: int, runs) -> None:
        count = sum(n for _, n in runs)
        ctx = (self._key, self._prev)
        if self._executor is not None:
            fut = self._loop.run_in_executor(self._executor, self._process, lane, runs, ctx)
            fut.add_done_callback(lambda f: self._batch_done(
                f.exception(), None if f.exception() else f.result(), lane, runs, count))
        else:
            error = started = None
            try:
                started = self._process(lane, runs, ctx)
            except Exception as exc:  # never lose the loop to a processing bug
                error = exc
            self._batch_done(error, started, lane, runs, count)

    def _process(self, lane: int, runs, ctx) -> float:
        """Process the batch's runs of consecutive slots in place (worker thread); returns
        when processing started (perf_counter)."""
        started = time.perf_counter()
        key, prev = ctx
        mem, rec = self._mem, self._records
        S, R = self._stride, self._record_size
        snapshots = None
        if prev is not None:
            # Rejected slots are unspecified afterwards: keep the frames for a second try
            # with the previous epoch's key.
            snapshots = [(start, n, bytes(mem[start * S:(start + n) * S])) for start, n in runs]
        for start, n in runs:
            self._process_batch(key.keys, mem[start * S:(start + n) * S], n,
                                key.replay_filter, rec[start * R:(start + n) * R])
        if prev is None:
            return started
        for slot in self.arena.batch_slots_with(KIND_REJECT, REASON_BAD_MAC, lane):
            for start, n, data in snapshots:
                if start <= slot < start + n:
                    off = (slot - start) * S
                    mem[slot * S:(slot + 1) * S] = data[off:off + S]
                    break
            self._process_batch(prev.keys, mem[slot * S:(slot + 1) * S], 1,
                                prev.replay_filter, rec[slot * R:(slot + 1) * R])
        return started

    def _batch_done(self, error, started, lane: int, runs, count: int) -> None:
        now = time.perf_counter()
        if error is not None:
            log.error("batch processing failed: %r", error)
            R = self._record_size
            for start, n in runs:  # every frame of the batch counts as unprocessed
                self._records[start * R:(start + n) * R] = bytes(n * R)
        if started is not None:
            elapsed = now - started
            self.processing.observe(elapsed)
            self.processing_per_packet.observe(elapsed / count)
        self.batch_sizes.observe(count)
        keys = self.arena.finish_batch(self.delay_queue.now_us(), self._delays.beta,
                                       self._mean_us, self._max_us, lane)
        self.delay_queue.push_keys(keys)
        self._free_lanes.append(lane)
        self._inflight -= 1
        if self.arena.ready_count and not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._start_batch)

    # -- after the delay -----------------------------------------------------------------

    def _on_due(self, slots: list[int]) -> None:
        arena, mem, S = self.arena, self._mem, self._stride
        # The records are read in C: forwards come back grouped by next hop, so the loop
        # below runs once per next hop, not once per packet.
        forwards, local = arena.due_groups(slots)
        send_many = self.links.send_many
        for address, group in forwards.items():
            send_many(address, group)
        for slot in local:
            kind, address, offset, length, surb_id = arena.outcome(slot)
            base = slot * S + offset
            payload = bytes(mem[base:base + length])
            self.mailboxes.put(address, Delivery(kind, payload,
                                                 surb_id if kind == KIND_REPLY else None))
            arena.release(slot)

    # -- inspection ----------------------------------------------------------------------

    def stats(self) -> dict:
        """Counters of this node (what the metrics expose), as a plain dict."""
        arena = self.arena
        outcomes = arena.outcomes()
        return {
            "frames_in": arena.frames_in,
            "forwarded": outcomes[KIND_FORWARD],
            "delivered": outcomes[KIND_DELIVER],
            "replies": outcomes[KIND_REPLY],
            "sent": self.links.packets_out,
            "rejects": {REASON_NAMES.get(c, str(c)): n for c, n in arena.rejects().items()},
            "link_drops": dict(self.links.drops),
            "mailbox_drops": dict(self.mailboxes.drops),
            "delay_queue": len(self.delay_queue),
            "links_queued": self.links.queued(),
            "free_slots": arena.nfree,
            "connections": len(self._conns),
            "refused_connections": self.refused_connections,
            "idle_closed": self.idle_closed,
            "refusals": dict(self.refusals),
            "rate_pauses": self.rate_pauses,
            "state": self.state,
            "links": self.links.states(),
            "unreachable": dict(self.links.unreachable),
            "probes_answered": self.probes_answered,
            "probe_limited": self.probe_limited,
            "probes_sent": self.links.probes_sent,
            "probes_acked": self.links.probes_acked,
            "control_errors": self.control_errors + self.links.control_errors,
        }
