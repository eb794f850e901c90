"""The mixnet client (docs/client.md): routes, packets, fragments, acknowledgements with
retransmission, SURB replies, and receiving from a gateway mailbox.

The network is reached through a `Transport` (two coroutines: send a frame to a first hop,
fetch a mailbox from a gateway), so the node runtime can supply the TCP one. A
`LoopbackNetwork` is a real in-process network: node key sets that process every frame
with `fogcore.packet.process_packet`, apply their VRF delays and keep mailboxes, with nodes
that can be taken down to test retransmission and routing around.
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import os
import struct
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import fogcore.packet as packet_api
from fogcore.delays import EpochDelays, vrf_public_key, vrf_secret_key
from fogcore.mixnet.descriptor import sign_descriptor
from fogcore.mixnet.fragment import (
    HEADER_SIZE,
    MESSAGE_ID_SIZE,
    AddStatus,
    Fragment,
    Reassembler,
    split_message,
)
from fogcore.mixnet.topology import DEFAULT_HOPS, GATEWAY, NoRoute, Route, Topology
from fogcore.packet import (
    FRAME_SIZES,
    MESSAGE_CAPACITY,
    PAYLOAD_SIZE,
    Kind,
    NodeKeys,
    Reason,
    ReplyError,
    Surb,
    SurbKey,
    build_packet,
    build_reply,
    make_surb,
    open_reply,
)
from fogcore.replay import ReplayFilter

__all__ = [
    "MAILBOX_ID_SIZE",
    "REPLY_CAPACITY",
    "UNACKED_REASONS",
    "Address",
    "ClientConfig",
    "DeliveryFailed",
    "Envelope",
    "EnvelopeError",
    "Evidence",
    "LoopbackNetwork",
    "MailboxItem",
    "MessageTooLong",
    "MixClient",
    "ReceivedMessage",
    "SendResult",
    "Transport",
    "TransportError",
    "chunk_size",
    "decode_envelope",
    "encode_ack",
    "encode_data",
    "encode_drop",
    "encode_loop",
    "encode_reply",
    "surb_size",
]

MAILBOX_ID_SIZE = 32
_FRAME_HEADER = 4
_U16 = struct.Struct(">H")
_ACK = struct.Struct(">16sH")
# Refused connections one fragment may meet before it is given up (each marks a node down).
_MAX_REFUSALS = 16


class Envelope(enum.IntEnum):
    """The first byte of every client message inside a packet (docs/client.md §3)."""

    DATA = 1
    ACK = 2
    REPLY = 3
    LOOP = 4
    DROP = 5


class EnvelopeError(ValueError):
    """A client message that does not follow docs/client.md §3."""


class TransportError(Exception):
    """The transport could not send a frame or fetch a mailbox (node unreachable).
    `reason` says how: "refused", "connect_timeout", "send_timeout", "unknown" (not in
    the directory) or "unreachable" (anything else)."""

    def __init__(self, message: str = "", reason: str = "unreachable") -> None:
        super().__init__(message)
        self.reason = reason


class Evidence(enum.Enum):
    """What the client learnt about the nodes of a route (`MixClient.report`)."""

    ACKED = "acked"  # an acknowledgement came back: the nodes worked
    LOOP_RETURNED = "loop_returned"  # a loop came back: the nodes worked
    UNACKED = "unacked"  # a fragment was not acknowledged in time
    LOOP_LOST = "loop_lost"  # a loop did not come back in time
    ENTRY_FAILED = "entry_failed"  # the transport could not reach, or lost, this entry


#: Why a fragment transmission was never acknowledged (`unacked_<reason>` in stats).
UNACKED_REASONS = ("timeout", "unconfirmed", "refused", "no_route", "cancelled")


class MessageTooLong(ValueError):
    """The message exceeds the configured maximum (or a reply exceeds one packet)."""


class DeliveryFailed(Exception):
    """Some fragments of a message were never acknowledged within the retry budget."""

    def __init__(self, message_id: bytes, missing: list[int]) -> None:
        super().__init__(f"message {message_id.hex()}: fragments {missing} not acknowledged")
        self.message_id = message_id
        self.missing = missing


def surb_size(format: str) -> int:
    """Bytes of a serialized SURB of this packet format (format, first hop, payload key,
    header): 363 for `sphinx`, 523 for `kem`."""
    header = FRAME_SIZES[format] - _FRAME_HEADER - PAYLOAD_SIZE
    return 1 + 32 + 32 + header


def chunk_size(format: str) -> int:
    """Message bytes per fragment: the packet capacity less the DATA envelope (kind,
    SURB length, acknowledgement SURB) and the fragment header."""
    return MESSAGE_CAPACITY - 1 - _U16.size - surb_size(format) - HEADER_SIZE


#: Bytes a SURB reply can carry (one packet, less the envelope kind).
REPLY_CAPACITY = MESSAGE_CAPACITY - 1


def encode_data(ack_surb: bytes, fragment: bytes) -> bytes:
    """DATA: kind || SURB length (u16) || acknowledgement SURB (may be empty) || fragment."""
    return bytes((Envelope.DATA,)) + _U16.pack(len(ack_surb)) + ack_surb + fragment


def encode_ack(message_id: bytes, index: int) -> bytes:
    """ACK: kind || message id (16) || fragment index (u16)."""
    return bytes((Envelope.ACK,)) + _ACK.pack(message_id, index)


def encode_reply(data: bytes) -> bytes:
    """REPLY: kind || the reply bytes."""
    return bytes((Envelope.REPLY,)) + bytes(data)


def encode_loop(loop_id: bytes, random_bytes: Callable[[int], bytes] = os.urandom) -> bytes:
    """LOOP: kind || loop id (16) || random padding to the packet capacity."""
    return bytes((Envelope.LOOP,)) + loop_id + random_bytes(MESSAGE_CAPACITY - 17)


def encode_drop(random_bytes: Callable[[int], bytes] = os.urandom) -> bytes:
    """DROP: kind || random padding to the packet capacity."""
    return bytes((Envelope.DROP,)) + random_bytes(MESSAGE_CAPACITY - 1)


def decode_envelope(message) -> tuple[Envelope, tuple]:
    """(kind, fields) of a client message: DATA → (ack SURB bytes, `Fragment`), ACK →
    (message id, index), REPLY → (data,), LOOP → (loop id,), DROP → (). `EnvelopeError`
    (or `FragmentError`, a subclass of ValueError) when malformed."""
    message = bytes(message)
    if not message:
        raise EnvelopeError("empty client message")
    try:
        kind = Envelope(message[0])
    except ValueError:
        raise EnvelopeError(f"unknown client message kind {message[0]}") from None
    body = message[1:]
    if kind is Envelope.DATA:
        if len(body) < _U16.size:
            raise EnvelopeError("DATA message truncated")
        (n,) = _U16.unpack_from(body)
        if len(body) < 2 + n:
            raise EnvelopeError("DATA message shorter than its SURB")
        return kind, (body[2 : 2 + n], Fragment.decode(body[2 + n :]))
    if kind is Envelope.ACK:
        if len(body) != _ACK.size:
            raise EnvelopeError("ACK message has the wrong size")
        return kind, _ACK.unpack(body)
    if kind is Envelope.REPLY:
        return kind, (body,)
    if kind is Envelope.LOOP:
        if len(body) < MESSAGE_ID_SIZE:
            raise EnvelopeError("LOOP message truncated")
        return kind, (body[:MESSAGE_ID_SIZE],)
    return kind, ()


@dataclass(frozen=True, slots=True)
class Address:
    """Where a client receives: its gateway's node id and its mailbox id (32 bytes each).
    Written as `<gateway hex>.<mailbox hex>`."""

    gateway: bytes
    mailbox: bytes

    def __post_init__(self) -> None:
        if len(self.gateway) != 32 or len(self.mailbox) != MAILBOX_ID_SIZE:
            raise ValueError("gateway and mailbox ids are 32 bytes each")

    def __str__(self) -> str:
        return f"{self.gateway.hex()}.{self.mailbox.hex()}"

    @classmethod
    def parse(cls, text: str) -> Address:
        """The address written by `str(address)`; ValueError when malformed."""
        gateway, sep, mailbox = text.strip().partition(".")
        if not sep:
            raise ValueError("an address is <gateway hex>.<mailbox hex>")
        return cls(bytes.fromhex(gateway), bytes.fromhex(mailbox))


@dataclass(frozen=True, slots=True)
class MailboxItem:
    """One entry of a gateway mailbox. `kind` is `Kind.DELIVER` (`payload` is the delivered
    message) or `Kind.REPLY` (`payload` is the 2048-byte reply payload, `surb_id` its SURB
    id); `received_at` is the gateway's wall-clock time of storing it, when it says."""

    kind: Kind
    payload: bytes
    surb_id: bytes | None = None
    received_at: float | None = None


@runtime_checkable
class Transport(Protocol):
    """How a client reaches the network. Both raise `TransportError` when the node cannot
    be reached."""

    async def send_frame(self, first_hop: bytes, frame: bytes) -> None:
        """Hand one packet frame to the node with id `first_hop`."""

    async def fetch_mailbox(self, gateway: bytes, mailbox: bytes) -> list[MailboxItem]:
        """Take (and remove) every item waiting in `mailbox` at `gateway`."""


@dataclass(slots=True)
class ClientConfig:
    """Client settings (docs/client.md §4 explains each)."""

    format: str = "sphinx"
    hops: int = DEFAULT_HOPS
    ack_timeout: float = 2.0  # before any round trip has been measured
    min_timeout: float = 0.05
    max_timeout: float = 30.0
    backoff: float = 2.0
    max_attempts: int = 5
    max_in_flight: int = 32
    poll_interval: float = 0.25
    max_message_bytes: int = 1 << 20
    reassembly_ttl: float = 120.0
    max_surbs: int = 8192
    reply_surb_ttl: float = 3600.0
    suspect_after: float = 3.0  # suspicion score at which a node is avoided
    down_for: float = 60.0  # the longest a node stays avoided after its last bad sign
    suspicion_half_life: float = 10.0  # seconds for a suspicion score to halve
    entry_failure_weight: float = 6.0  # score added by a refused/timed-out/lost entry
    inbox_size: int = 1024
    refresh_interval: float = 3.0  # topology refresh period (with a `directory`)
    refresh_min_gap: float = 1.0  # refreshes asked for by failures: at most this often
    refresh_timeout: float = 10.0  # bound of one directory listing

    def max_score(self) -> float:
        """The score cap: decaying from it to `suspect_after` takes `down_for`."""
        return self.suspect_after * 2 ** (self.down_for / self.suspicion_half_life)


@dataclass(frozen=True, slots=True)
class SendResult:
    """An acknowledged message: its id, fragment count, packets sent for it and the id of
    the reply SURB it carried (None without one)."""

    message_id: bytes
    fragments: int
    packets: int
    reply_surb_id: bytes | None


@dataclass(frozen=True, slots=True)
class ReceivedMessage:
    """A message (`kind` "message": `message_id`, `reply_surb` when the sender attached
    one) or a SURB reply (`kind` "reply": `surb_id` of the SURB it answered)."""

    kind: str
    data: bytes
    message_id: bytes | None = None
    surb_id: bytes | None = None
    reply_surb: Surb | None = None


@dataclass(slots=True)
class _SurbEntry:
    key: SurbKey
    purpose: str  # "ack" or "reply"
    expires_at: float
    target: tuple[bytes, int] | None = None  # (message id, index) for an ack
    attempt: int = 0
    nodes: tuple[bytes, ...] = ()  # mix nodes of the data and ack routes
    sent_at: float = 0.0  # monotonic time the data packet left (acks)


class _Directory(Protocol):
    async def refresh(self, topology: Topology): ...


@dataclass(slots=True, eq=False)
class _Waiting:
    sent_at: float  # monotonic time the packet left
    abort: asyncio.Future  # set to the reason when its connection was lost


class MixClient:
    """A client with its mailbox `mailbox` at gateway `gateway`.

    `send` fragments a message, sends each fragment with a SURB for its acknowledgement
    and retransmits unacknowledged fragments on other routes with backoff; `reply` answers
    a received SURB; `receive` returns what arrived. `start` runs the mailbox poller (or
    call `poll` yourself) and, given a `directory` (anything with a coroutine
    `refresh(topology)`, e.g. `DirectoryClient`), the topology refresher. Every sign of a
    node's health enters through `report` and lands in the topology's suspicion scores.
    `stats` counts everything, losses included: every fragment transmission ends
    acknowledged (`transmissions_acked`) or in one `unacked_<reason>` counter."""

    def __init__(
        self,
        topology: Topology,
        transport: Transport,
        gateway: bytes,
        *,
        mailbox: bytes | None = None,
        config: ClientConfig | None = None,
        random_bytes: Callable[[int], bytes] = os.urandom,
        directory: _Directory | None = None,
    ) -> None:
        self.config = config or ClientConfig()
        if topology.format != self.config.format:
            raise ValueError("the topology holds nodes of another packet format")
        cfg = self.config
        topology.suspect_at = cfg.suspect_after
        topology.half_life = cfg.suspicion_half_life
        topology.max_score = max(cfg.suspect_after, cfg.max_score())
        self.topology = topology
        self.transport = transport
        self.directory = directory
        # A transport that notices lost connections on its own (TcpTransport's probes)
        # tells the client, which reroutes the fragments that went that way.
        add_listener = getattr(transport, "add_failure_listener", None)
        if callable(add_listener):
            add_listener(self._entry_lost)
        self.address = Address(bytes(gateway),
                               random_bytes(MAILBOX_ID_SIZE) if mailbox is None else bytes(mailbox))
        self._random = random_bytes
        self.chunk_size = chunk_size(self.config.format)
        self.reassembler = Reassembler(max_message_bytes=self.config.max_message_bytes,
                                       max_buffered_bytes=max(8 << 20,
                                                              self.config.max_message_bytes),
                                       ttl=self.config.reassembly_ttl)
        self.stats: Counter[str] = Counter()
        self.loop_handler: Callable[[bytes, float], None] | None = None
        #: called as (message_id, index, mix node ids of the data and the ack route, sent_at,
        #: outcome, ended_at) when a fragment transmission ends: outcome "acked" or an
        #: `unacked_` reason; times are `time.monotonic()` (the faults benchmark reads
        #: routes and reroute times here)
        self.transmission_observer: Callable[..., None] | None = None
        self._surbs: OrderedDict[bytes, _SurbEntry] = OrderedDict()
        self._acks: dict[tuple[bytes, int], asyncio.Future] = {}
        # Per node, the latest send time (monotonic) of a packet it carried that came back.
        self._alive_since: dict[bytes, float] = {}
        self._last_success = float("-inf")  # monotonic time of the latest ack or loop back
        # first hop -> fragment transmissions waiting for their ack through it
        self._waiting: dict[bytes, set[_Waiting]] = {}
        self._refresher: asyncio.Task | None = None
        self._refresh_wanted = asyncio.Event()
        self._last_refresh = float("-inf")
        self._srtt: float | None = None
        self._rttvar = 0.0
        self._inbox: asyncio.Queue[ReceivedMessage] = asyncio.Queue(self.config.inbox_size)
        self._window: asyncio.Semaphore | None = None
        self._poller: asyncio.Task | None = None
        self._polling = asyncio.Event()  # set while the poller should keep going

    @property
    def gateway(self) -> bytes:
        """This client's gateway node id."""
        return self.address.gateway

    @property
    def mailbox(self) -> bytes:
        """This client's mailbox id."""
        return self.address.mailbox

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start polling the mailbox every `poll_interval` seconds and, with a
        directory, refreshing the topology every `refresh_interval` seconds."""
        if self._poller is None:
            self._polling = asyncio.Event()
            self._polling.set()
            loop = asyncio.get_running_loop()
            self._poller = loop.create_task(self._poll_forever(self._polling))
            if self.directory is not None:
                self._refresher = loop.create_task(self._refresh_forever(self._polling))

    async def stop(self) -> None:
        """Stop polling and refreshing; returns once both tasks have ended."""
        tasks = [t for t in (self._poller, self._refresher) if t is not None]
        self._poller = self._refresher = None
        if not tasks:
            return
        # The flag ends the loops even when a cancellation is swallowed on the way (Python
        # 3.11's wait_for returns a result that arrives together with the cancellation).
        self._polling.clear()
        self._refresh_wanted.set()
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                # Ours to absorb only when it is the task's; a cancellation of stop() goes on.
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise

    async def __aenter__(self) -> MixClient:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def _poll_forever(self, polling: asyncio.Event) -> None:
        while polling.is_set():
            await self.poll()
            if polling.is_set():
                await asyncio.sleep(self.config.poll_interval)

    # ------------------------------------------------------------------ topology refresh

    async def refresh(self) -> bool:
        """Refresh the topology from the directory once; False (counted) when it could
        not be read, and the old snapshot stays."""
        if self.directory is None:
            return False
        from fogcore.mixnet.directory_client import DirectoryError

        self._last_refresh = time.monotonic()
        try:
            async with asyncio.timeout(self.config.refresh_timeout):
                await self.directory.refresh(self.topology)
        except (DirectoryError, TimeoutError, OSError):
            self.stats["refresh_errors"] += 1
            return False
        self.stats["refreshes"] += 1
        return True

    def request_refresh(self) -> None:
        """Ask the refresher for a refresh now (it keeps `refresh_min_gap` between
        refreshes)."""
        self._refresh_wanted.set()

    async def _refresh_forever(self, running: asyncio.Event) -> None:
        cfg = self.config
        while running.is_set():
            try:
                async with asyncio.timeout(cfg.refresh_interval):
                    await self._refresh_wanted.wait()
            except TimeoutError:
                pass
            if not running.is_set():
                return
            # Failures in a burst ask for one refresh, not one each.
            gap = self._last_refresh + cfg.refresh_min_gap - time.monotonic()
            if gap > 0:
                await asyncio.sleep(gap)
            self._refresh_wanted.clear()
            if running.is_set():
                await self.refresh()

    # ------------------------------------------------------------------ node health

    def report(self, evidence: Evidence, nodes: Iterable[bytes],
               sent_at: float | None = None) -> None:
        """The one entry of every sign of node health into the topology's scores.
        `sent_at` (monotonic) is when the packet concerned left.

        A packet that came back clears its nodes. A lost one adds one point to each of
        its nodes, but only when something else came back after it left (else the
        recipient or our own link is the likelier cause) and never to a node that carried
        a packet sent later that came back (it worked after the loss). A failed entry
        gets `entry_failure_weight` at once and asks for a topology refresh."""
        topology = self.topology
        if evidence in (Evidence.ACKED, Evidence.LOOP_RETURNED):
            when = time.monotonic() if sent_at is None else sent_at
            self._last_success = time.monotonic()
            for node in nodes:
                topology.trust(node)
                if self._alive_since.get(node, -1.0) < when:
                    self._alive_since[node] = when
            return
        if evidence is Evidence.ENTRY_FAILED:
            weight = self.config.entry_failure_weight
            self.request_refresh()
        else:
            if sent_at is None or self._last_success <= sent_at:
                self.stats["suspicion_withheld"] += 1
                return
            weight = 1.0
        for node in nodes:
            if evidence is not Evidence.ENTRY_FAILED and \
                    self._alive_since.get(node, -1.0) > sent_at:
                continue
            was_suspect = topology.is_suspect(node)
            topology.suspect(node, weight)
            if not was_suspect and topology.is_suspect(node):
                self.stats["nodes_suspected"] += 1

    def _entry_lost(self, node_id: bytes, reason: str, unconfirmed: int,
                    since: float) -> None:
        """The transport lost its connection to an entry (`reason`); `unconfirmed` frames
        written after `since` (monotonic) may never have arrived. Fragments sent through
        it since then are retransmitted now instead of waiting for their timeout."""
        self.stats[f"entry_{reason}"] += 1
        self.stats["frames_unconfirmed"] += unconfirmed
        self.report(Evidence.ENTRY_FAILED, (node_id,))
        for waiting in list(self._waiting.get(bytes(node_id), ())):
            if waiting.sent_at >= since and not waiting.abort.done():
                waiting.abort.set_result(reason)

    # ------------------------------------------------------------------ routes and SURBs

    def route(self, gateway: bytes, avoid: Iterable[bytes] = ()) -> Route:
        """A route of the configured length to `gateway` (`Topology.select_route`)."""
        return self.topology.select_route(gateway, self.config.hops, avoid)

    def _register_surb(self, surb_id: bytes, entry: _SurbEntry) -> None:
        now = time.monotonic()
        while self._surbs:
            oldest_id, oldest = next(iter(self._surbs.items()))
            if oldest.expires_at > now and len(self._surbs) < self.config.max_surbs:
                break
            # An ack SURB outlives its fragment only to tell late acks from forgeries;
            # dropping the oldest keeps the table bounded.
            del self._surbs[oldest_id]
        self._surbs[surb_id] = entry

    def surb_key(self, surb_id: bytes) -> SurbKey | None:
        """The key that opens a reply to the SURB `surb_id` this client made (a reply or
        an acknowledgement SURB); None when unknown, expired or already answered. Lets an
        application keep a reply SURB's key beyond this client's life, e.g. in a file."""
        entry = self._surbs.get(bytes(surb_id))
        if entry is None or entry.expires_at <= time.monotonic():
            return None
        return entry.key

    def make_reply_surb(self) -> tuple[Surb, bytes]:
        """A SURB for one reply to this client, and its id (the id a `ReceivedMessage` of
        kind "reply" carries). Raises `NoRoute`."""
        route = self.route(self.gateway)
        surb, key = make_surb(route.infos, self.mailbox, self.config.format, self._random)
        expires = time.monotonic() + self.config.reply_surb_ttl
        self._register_surb(key.surb_id, _SurbEntry(key, "reply", expires))
        return surb, key.surb_id

    # ------------------------------------------------------------------ sending

    async def send_packet(self, route: Route, mailbox: bytes, message: bytes):
        """Build and send one packet carrying `message` along `route` to `mailbox` at the
        route's gateway; return the `BuiltPacket` (its per-hop tags). Raises
        `TransportError` when the first hop is unreachable (reported to the topology
        here, for every kind of packet)."""
        built = build_packet(route.infos, mailbox, message, self.config.format, self._random)
        try:
            await self.transport.send_frame(built.first_hop, built.packet)
        except TransportError as exc:
            self.stats[f"entry_{exc.reason}"] += 1
            self.report(Evidence.ENTRY_FAILED, (route.first_hop,))
            raise
        self.stats["packets_sent"] += 1
        return built

    def _timeout(self, attempt: int) -> float:
        cfg = self.config
        if self._srtt is None:
            base = cfg.ack_timeout
        else:
            base = self._srtt + 4 * self._rttvar
        base = min(cfg.max_timeout, max(cfg.min_timeout, base))
        return min(cfg.max_timeout, base * cfg.backoff**attempt)

    def _rtt_sample(self, rtt: float) -> None:
        # RFC 6298's smoothed round-trip time and variation.
        if self._srtt is None:
            self._srtt, self._rttvar = rtt, rtt / 2
        else:
            self._rttvar = 0.75 * self._rttvar + 0.25 * abs(self._srtt - rtt)
            self._srtt = 0.875 * self._srtt + 0.125 * rtt

    def _unacked(self, reason: str) -> None:
        self.stats[f"unacked_{reason}"] += 1

    def _observe(self, target: tuple[bytes, int], mixes: tuple[bytes, ...], sent_at: float,
                 outcome: str) -> None:
        if self.transmission_observer is not None:
            self.transmission_observer(target[0], target[1], mixes, sent_at, outcome,
                                       time.monotonic())

    async def _deliver(self, recipient: Address, message_id: bytes, index: int,
                       fragment: bytes) -> int:
        """Send one fragment until acknowledged; the packets sent, negative when the retry
        budget ran out. Every transmission ends acknowledged or counted by reason."""
        cfg = self.config
        loop = asyncio.get_running_loop()
        target = (message_id, index)
        acked = self._acks[target] = loop.create_future()
        avoid: set[bytes] = set()
        packets = 0
        # The budget counts transmissions (and waits for a route); a refused connection
        # costs no time and says nothing about loss, so it is retried at once on another
        # entry node, within its own bound.
        attempt = refusals = 0
        try:
            while attempt < cfg.max_attempts and not acked.done():
                timeout = self._timeout(attempt)
                self.stats["transmissions"] += 1
                try:
                    route = self.route(recipient.gateway, avoid)
                    ack_route = self.route(self.gateway, avoid)
                except NoRoute:
                    self.stats["no_route"] += 1
                    self._unacked("no_route")
                    attempt += 1
                    await asyncio.sleep(timeout)
                    continue
                mixes = route.node_ids[:-1] + ack_route.node_ids[:-1]
                surb, key = make_surb(ack_route.infos, self.mailbox, cfg.format, self._random)
                entry = _SurbEntry(
                    key, "ack", time.monotonic() + cfg.max_timeout * 2, target, attempt, mixes)
                self._register_surb(key.surb_id, entry)
                sent_at = loop.time()
                entry.sent_at = time.monotonic()
                try:
                    await self.send_packet(route, recipient.mailbox,
                                           encode_data(surb.to_bytes(), fragment))
                except TransportError:
                    # The entry node is unreachable (reported by send_packet): retry at once.
                    self.stats["send_errors"] += 1
                    self._unacked("refused")
                    self._observe(target, mixes, entry.sent_at, "refused")
                    avoid.add(route.first_hop)
                    refusals += 1
                    if refusals >= _MAX_REFUSALS:
                        break
                    continue
                if attempt:
                    self.stats["retransmissions"] += 1
                attempt += 1
                packets += 1
                self.stats["fragments_sent"] += 1
                outcome = await self._await_ack(acked, route.first_hop, entry.sent_at, timeout)
                self._observe(target, mixes, entry.sent_at, outcome)
                if outcome == "acked":
                    self.stats["transmissions_acked"] += 1
                    if acked.result() == 0 and attempt == 1:
                        # Karn's rule: only unambiguous round trips feed the estimate.
                        self._rtt_sample(loop.time() - sent_at)
                    return packets
                self._unacked(outcome)
                if outcome == "unconfirmed":
                    # The entry lost the packet (reported by the transport), not the mixes.
                    avoid.add(route.first_hop)
                    continue
                self.stats["fragments_lost"] += 1
                self.report(Evidence.UNACKED, mixes, entry.sent_at)
                avoid.update(mixes)
            if acked.done():
                return packets
            self.stats["fragments_failed"] += 1
            return -max(packets, 1)
        finally:
            self._acks.pop(target, None)

    async def _await_ack(self, acked: asyncio.Future, first_hop: bytes, sent_at: float,
                         timeout: float) -> str:
        """"acked", "timeout", or "unconfirmed" when the transport lost the connection
        the packet went out on (`_entry_lost`)."""
        waiting = _Waiting(sent_at, asyncio.get_running_loop().create_future())
        self._waiting.setdefault(first_hop, set()).add(waiting)
        try:
            await asyncio.wait({acked, waiting.abort}, timeout=timeout,
                               return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            self._unacked("cancelled")
            raise
        finally:
            waiters = self._waiting.get(first_hop)
            if waiters is not None:
                waiters.discard(waiting)
                if not waiters:
                    del self._waiting[first_hop]
            waiting.abort.cancel()
        if acked.done():
            return "acked"
        return "unconfirmed" if waiting.abort.done() and not waiting.abort.cancelled() \
            else "timeout"

    async def _deliver_windowed(self, recipient, message_id, index, fragment) -> int:
        if self._window is None:
            self._window = asyncio.Semaphore(self.config.max_in_flight)
        async with self._window:
            return await self._deliver(recipient, message_id, index, fragment)

    async def send(self, recipient: Address, data, *, want_reply: bool = False) -> SendResult:
        """Send `data` to `recipient` reliably: returns once every fragment is acknowledged;
        raises `DeliveryFailed` when some fragment exhausted its retry budget,
        `MessageTooLong` above `max_message_bytes`, `NoRoute` when no reply SURB can be
        made. With `want_reply` the message carries a SURB the recipient can `reply` with."""
        data = bytes(data)
        reply_surb, reply_id = b"", None
        if want_reply:
            surb, reply_id = self.make_reply_surb()
            reply_surb = surb.to_bytes()
        body = _U16.pack(len(reply_surb)) + reply_surb + data
        if len(body) > self.config.max_message_bytes:
            raise MessageTooLong(f"message of {len(data)} bytes exceeds the configured maximum")
        fragments = split_message(body, self.chunk_size, self._random(MESSAGE_ID_SIZE))
        message_id = fragments[0].message_id
        self.stats["messages_sent"] += 1
        try:
            results = await asyncio.gather(*(
                self._deliver_windowed(recipient, message_id, f.index, f.encode())
                for f in fragments
            ))
        except BaseException:
            # Cancelled (or a bug): the message still ends in exactly one counter.
            self.stats["messages_abandoned"] += 1
            raise
        missing = [i for i, r in enumerate(results) if r < 0]
        if missing:
            self.stats["messages_failed"] += 1
            raise DeliveryFailed(message_id, missing)
        self.stats["messages_delivered"] += 1
        return SendResult(message_id, len(fragments), sum(abs(r) for r in results), reply_id)

    async def reply(self, surb: Surb, data) -> None:
        """Answer a received message through its SURB (one packet, at most
        `REPLY_CAPACITY` bytes; a SURB works once). Raises `TransportError`."""
        data = bytes(data)
        if len(data) > REPLY_CAPACITY:
            raise MessageTooLong(f"a reply holds at most {REPLY_CAPACITY} bytes")
        first_hop, frame = build_reply(surb, encode_reply(data))
        await self.transport.send_frame(first_hop, frame)
        self.stats["replies_sent"] += 1

    # ------------------------------------------------------------------ receiving

    async def receive(self, timeout: float | None = None) -> ReceivedMessage:
        """The next received message or reply; TimeoutError after `timeout` seconds."""
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancellation
        # of the caller that coincides with a message arriving.
        async with asyncio.timeout(timeout):
            return await self._inbox.get()

    async def poll(self) -> int:
        """Fetch the mailbox once and handle every item; return how many there were."""
        try:
            items = await self.transport.fetch_mailbox(self.gateway, self.mailbox)
        except TransportError:
            self.stats["fetch_errors"] += 1
            return 0
        for item in items:
            try:
                if item.kind == Kind.REPLY:
                    self._handle_reply(item)
                elif item.kind == Kind.DELIVER:
                    await self._handle_message(item)
                else:
                    self.stats["bad_items"] += 1
            except (ValueError, ReplyError):
                self.stats["bad_items"] += 1
        self.reassembler.expire()
        return len(items)

    def _deliver_inbox(self, received: ReceivedMessage) -> None:
        try:
            self._inbox.put_nowait(received)
        except asyncio.QueueFull:
            self.stats["inbox_overflow"] += 1

    def _handle_reply(self, item: MailboxItem) -> None:
        entry = self._surbs.get(item.surb_id or b"")
        if entry is None:
            self.stats["unknown_surbs"] += 1
            return
        message = open_reply(entry.key, item.payload)
        kind, fields = decode_envelope(message)
        if entry.purpose == "ack":
            if kind is not Envelope.ACK or tuple(fields) != entry.target:
                self.stats["bad_items"] += 1
                return
            self.stats["acks_received"] += 1
            self.report(Evidence.ACKED, entry.nodes, entry.sent_at)
            future = self._acks.get(entry.target)
            if future is not None and not future.done():
                future.set_result(entry.attempt)
            else:
                self.stats["late_acks"] += 1
            return
        if kind is not Envelope.REPLY:
            self.stats["bad_items"] += 1
            return
        # A reply SURB answers once: forget its key.
        del self._surbs[item.surb_id]
        self.stats["replies_received"] += 1
        self._deliver_inbox(ReceivedMessage("reply", fields[0], surb_id=item.surb_id))

    async def _handle_message(self, item: MailboxItem) -> None:
        kind, fields = decode_envelope(item.payload)
        if kind is Envelope.LOOP:
            self.stats["loops_received"] += 1
            if self.loop_handler is not None:
                # Any object with kind/payload/surb_id will do; the time is optional.
                received_at = getattr(item, "received_at", None) or time.time()
                self.loop_handler(fields[0], received_at)
            return
        if kind is Envelope.DROP:
            self.stats["drops_received"] += 1
            return
        if kind is not Envelope.DATA:
            self.stats["bad_items"] += 1
            return
        ack_surb, frag = fields
        surb = Surb.from_bytes(ack_surb) if ack_surb else None
        self.stats["fragments_received"] += 1
        result = self.reassembler.add(frag)
        if result.status is AddStatus.REJECTED:
            self.stats["fragments_rejected"] += 1
            return
        if result.status is AddStatus.DUPLICATE:
            self.stats["duplicate_fragments"] += 1
        if surb is not None:
            # Duplicates are acknowledged again: the first acknowledgement may be lost.
            first_hop, frame = build_reply(surb, encode_ack(frag.message_id, frag.index))
            try:
                await self.transport.send_frame(first_hop, frame)
                self.stats["acks_sent"] += 1
            except TransportError:
                self.stats["ack_send_errors"] += 1
        if result.status is AddStatus.COMPLETE:
            self._complete(frag.message_id, result.message)

    def _complete(self, message_id: bytes, body: bytes) -> None:
        if len(body) < _U16.size:
            self.stats["bad_items"] += 1
            return
        (n,) = _U16.unpack_from(body)
        if len(body) < 2 + n:
            self.stats["bad_items"] += 1
            return
        reply_surb = Surb.from_bytes(body[2 : 2 + n]) if n else None
        self.stats["messages_received"] += 1
        self._deliver_inbox(ReceivedMessage("message", body[2 + n :], message_id=message_id,
                                            reply_surb=reply_surb))


# ---------------------------------------------------------------------- loopback network


@dataclass(slots=True)
class _LoopbackNode:
    keys: NodeKeys
    layer: int
    address: str
    replay: ReplayFilter
    down: bool = False
    extra_delay_us: int = 0
    ignore_delay: bool = False
    epochs: dict[int, EpochDelays] = field(default_factory=dict)


class LoopbackNetwork:
    """An in-process network of real nodes for tests and local experiments.

    Every node has real `NodeKeys`, a replay filter and a signed descriptor; every frame is
    processed by `process_packet` of `backend` (default `fogcore.packet`); a forwarded
    packet waits its VRF delay (`fogcore.delays.EpochDelays`, epochs of `epoch_seconds`)
    before reaching the next node; deliveries and replies land in bounded mailboxes at the
    gateways. `set_down` makes a node unreachable (frames to it are lost, a client
    connecting to it gets `TransportError`); `set_misbehaviour` makes it hold packets
    longer or ignore its delays (what loop auditing should catch). Implements `Transport`
    and the proof source of `fogcore.mixnet.cover.DelayAuditor`.
    """

    def __init__(
        self,
        *,
        format: str = "sphinx",
        layer_sizes: tuple[int, int, int] = (3, 3, 3),
        gateways: int = 2,
        mean_delay_us: int = 1000,
        max_delay_us: int | None = None,
        epoch_seconds: float = 10.0,
        backend=None,
        seed: bytes | None = None,
        mailbox_limit: int = 4096,
        trace: bool = False,
    ) -> None:
        self.format = format
        self.mean_delay_us = mean_delay_us
        self.max_delay_us = max_delay_us if max_delay_us is not None else 20 * mean_delay_us
        self.epoch_seconds = epoch_seconds
        self._backend = backend or packet_api
        self._mailbox_limit = mailbox_limit
        self.nodes: dict[bytes, _LoopbackNode] = {}
        layers = [layer for layer, size in enumerate(layer_sizes) for _ in range(size)]
        layers += [GATEWAY] * gateways
        for i, layer in enumerate(layers):
            if seed is None:
                keys = NodeKeys.generate()
            else:
                keys = NodeKeys.from_seed(hashlib.sha256(seed + i.to_bytes(4, "big")).digest())
            self.nodes[keys.node_id] = _LoopbackNode(
                keys, layer, f"127.0.0.1:{20000 + i}", ReplayFilter(1 << 16, 1e-9))
        self.mailboxes: dict[tuple[bytes, bytes], deque[MailboxItem]] = {}
        self.stats: Counter[str] = Counter()
        #: (node id, epoch, tag, applied delay in µs) of forwarded packets, when tracing
        self.trace: deque[tuple[bytes, int, bytes, int]] | None = (
            deque(maxlen=100_000) if trace else None)
        self._timers: set[asyncio.TimerHandle] = set()
        self.in_flight = 0

    # ------------------------------------------------------------------ set-up

    def descriptors(self, lifetime: int = 3600) -> list[tuple[bytes, bytes]]:
        """Every node's descriptor, signed by its identity, as (encoded, signature)."""
        out = []
        for node in self.nodes.values():
            d = sign_descriptor(node.keys.identity_seed, vrf_key=vrf_public_key(node.keys.identity_seed), routing_key=node.keys.routing_public,
                                layer=node.layer, format=self.format, address=node.address,
                                lifetime=lifetime)
            out.append((d.encoded, d.signature))
        return out

    def topology(self, **kwargs) -> Topology:
        """A `Topology` of this network built from its signed descriptors."""
        return Topology.from_descriptors(self.descriptors(), self.format, **kwargs)

    def layer(self, layer: int) -> list[bytes]:
        """Node ids of one layer, ordered."""
        return sorted(nid for nid, n in self.nodes.items() if n.layer == layer)

    def set_down(self, node_id: bytes, down: bool = True) -> None:
        """Take a node off the network (or bring it back)."""
        self.nodes[bytes(node_id)].down = down

    def set_misbehaviour(self, node_id: bytes, *, extra_delay_us: int = 0,
                         ignore_delay: bool = False) -> None:
        """Make a node add `extra_delay_us` to every delay, or forward without delay."""
        node = self.nodes[bytes(node_id)]
        node.extra_delay_us = extra_delay_us
        node.ignore_delay = ignore_delay

    def current_epoch(self) -> int:
        """The delay epoch of now."""
        return int(time.time() // self.epoch_seconds)

    def _epoch_delays(self, node: _LoopbackNode, epoch: int) -> EpochDelays:
        delays = node.epochs.get(epoch)
        if delays is None:
            delays = EpochDelays(vrf_secret_key(node.keys.identity_seed), epoch, self.mean_delay_us,
                                 self.max_delay_us)
            node.epochs[epoch] = delays
            while len(node.epochs) > 4:
                del node.epochs[min(node.epochs)]
        return delays

    async def vrf_key(self, node_id: bytes) -> bytes | None:
        """The VRF public key a node publishes in its descriptor, None for an unknown node."""
        node = self.nodes.get(bytes(node_id))
        return None if node is None else vrf_public_key(node.keys.identity_seed)

    async def epoch_proof(self, node_id: bytes, epoch: int) -> bytes | None:
        """A node's VRF proof for `epoch`, published only once the epoch is over."""
        node = self.nodes.get(bytes(node_id))
        if node is None or epoch >= self.current_epoch():
            return None
        return self._epoch_delays(node, epoch).proof

    # ------------------------------------------------------------------ Transport

    async def send_frame(self, first_hop: bytes, frame: bytes) -> None:
        """Hand a frame to a node; TransportError when it is unknown or down."""
        node = self.nodes.get(bytes(first_hop))
        if node is None or node.down:
            raise TransportError("connection refused", "refused")
        self._schedule(0.0, bytes(first_hop), bytes(frame))

    async def fetch_mailbox(self, gateway: bytes, mailbox: bytes) -> list[MailboxItem]:
        """Take every item of a mailbox; TransportError when the gateway is down."""
        node = self.nodes.get(bytes(gateway))
        if node is None or node.down:
            raise TransportError("gateway unreachable")
        box = self.mailboxes.pop((bytes(gateway), bytes(mailbox)), None)
        return list(box) if box else []

    # ------------------------------------------------------------------ processing

    def _schedule(self, delay: float, node_id: bytes, frame: bytes) -> None:
        loop = asyncio.get_running_loop()
        self.in_flight += 1
        handle: asyncio.TimerHandle | None = None

        def arrive() -> None:
            self._timers.discard(handle)
            self.in_flight -= 1
            self._arrive(node_id, frame)

        handle = loop.call_later(delay, arrive)
        self._timers.add(handle)

    def _arrive(self, node_id: bytes, frame: bytes) -> None:
        node = self.nodes.get(node_id)
        if node is None:
            self.stats["unknown_next_hop"] += 1
            return
        if node.down:
            self.stats["lost_at_down_node"] += 1
            return
        outcome = self._backend.process_packet(node.keys, frame, node.replay)
        self.stats["processed"] += 1
        if outcome.kind == Kind.FORWARD:
            epoch = self.current_epoch()
            if node.ignore_delay:
                delay_us = 0
            else:
                delay_us = self._epoch_delays(node, epoch).delay_us(outcome.tag)
                delay_us += node.extra_delay_us
            if self.trace is not None:
                self.trace.append((node_id, epoch, outcome.tag, delay_us))
            self.stats["forwarded"] += 1
            self._schedule(delay_us / 1e6, bytes(outcome.address), bytes(outcome.packet))
        elif outcome.kind in (Kind.DELIVER, Kind.REPLY):
            if node.layer != GATEWAY:
                self.stats["delivered_at_non_gateway"] += 1
            key = (node_id, bytes(outcome.address))
            box = self.mailboxes.setdefault(key, deque())
            if len(box) >= self._mailbox_limit:
                self.stats["mailbox_full"] += 1
                return
            surb_id = bytes(outcome.surb_id) if outcome.kind == Kind.REPLY else None
            box.append(MailboxItem(Kind(outcome.kind), bytes(outcome.payload), surb_id,
                                   time.time()))
            self.stats["delivered" if outcome.kind == Kind.DELIVER else "replies"] += 1
        else:
            self.stats[f"reject_{Reason(outcome.reason).name.lower()}"] += 1

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait until no frame is travelling inside the network."""
        deadline = time.monotonic() + timeout
        while self.in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.005)

    def close(self) -> None:
        """Cancel every frame still travelling."""
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        self.in_flight = 0
