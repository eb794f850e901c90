"""The stratified topology a client routes through (docs/client.md §1).

A snapshot of verified node descriptors, sorted into the three mix layers (entry, mix,
exit) and the gateways that hold mailboxes. A route of `hops` packet hops is `hops - 1`
mix nodes walking the layers in order, then the recipient's gateway (`layer_plan`).

Choosing is the one place where a node's health counts: every node carries one suspicion
score (fed by the client from acknowledgements, lost fragments, loops and transport
failures; it halves every `half_life` seconds). A layer's healthy nodes (not marked down,
score under `suspect_at`) are chosen at random, those to `avoid` only when no other is
healthy; when none is healthy the least suspect node is chosen, so no signal can ever
leave a layer empty. `NoRoute` means a layer has no node at all.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from fogcore.mixnet.descriptor import (
    LAYERS,
    Descriptor,
    DescriptorError,
    verify_descriptor,
)
from fogcore.packet import MAX_HOPS, NodeInfo

__all__ = [
    "DEFAULT_HOPS",
    "ENTRY",
    "EXIT",
    "GATEWAY",
    "MIN_HOPS",
    "MIX",
    "NoRoute",
    "RefreshResult",
    "Route",
    "Topology",
    "TopologyNode",
    "layer_plan",
]

ENTRY, MIX, EXIT, GATEWAY = 0, 1, 2, 3
MIN_HOPS = 2
#: Three mix layers and the gateway: the usual stratified route.
DEFAULT_HOPS = 4

# Layers of the mix positions of a route, by their number (hops - 1). Four positions
# traverse the middle layer twice (with two different nodes when it has them).
_MIX_PLANS = {1: (ENTRY,), 2: (ENTRY, EXIT), 3: (ENTRY, MIX, EXIT), 4: (ENTRY, MIX, MIX, EXIT)}


def layer_plan(hops: int) -> tuple[int, ...]:
    """The layer of every hop of a `hops`-hop route, the last being the gateway:
    2 → entry, gateway; 3 → entry, exit, gateway; 4 → entry, mix, exit, gateway;
    5 → entry, mix, mix, exit, gateway."""
    if not MIN_HOPS <= hops <= MAX_HOPS:
        raise ValueError(f"a route has {MIN_HOPS} to {MAX_HOPS} hops")
    return _MIX_PLANS[hops - 1] + (GATEWAY,)


class NoRoute(Exception):
    """No route can be built: a layer has no node in the snapshot, or the destination
    gateway is unknown, expired or marked down."""


@dataclass(frozen=True, slots=True)
class TopologyNode:
    """A node of the snapshot: what a sender needs (`info`) and where it sits."""

    node_id: bytes
    info: NodeInfo
    layer: int
    format: str
    address: str
    expires_at: int
    descriptor: Descriptor

    @property
    def layer_name(self) -> str:
        """"entry", "mix", "exit" or "gateway"."""
        return LAYERS[self.layer]


@dataclass(frozen=True, slots=True)
class Route:
    """The nodes of one route, first hop first, the gateway last."""

    nodes: tuple[TopologyNode, ...]

    @property
    def infos(self) -> list[NodeInfo]:
        """The route as `fogcore.packet` takes it."""
        return [n.info for n in self.nodes]

    @property
    def node_ids(self) -> tuple[bytes, ...]:
        """Node ids, first hop first."""
        return tuple(n.node_id for n in self.nodes)

    @property
    def first_hop(self) -> bytes:
        """The node a packet on this route is sent to."""
        return self.nodes[0].node_id

    @property
    def gateway(self) -> bytes:
        """The last node, which holds the destination mailbox."""
        return self.nodes[-1].node_id


@dataclass(frozen=True, slots=True)
class RefreshResult:
    """What a refresh kept: `accepted` nodes, `skipped` nodes of another packet format,
    `rejected` entries counted by reason, and `retained` unlisted nodes kept because their
    layer would otherwise have been left empty."""

    accepted: int
    skipped: int
    rejected: dict[str, int]
    retained: int = 0


class Topology:
    """A refreshable snapshot of the nodes of one packet format, with route selection.

    `rng` (default: the system's secure source) picks nodes; `clock()` is wall time in
    seconds (descriptor validity, down marks, the decay of suspicion). A node whose score
    reaches `suspect_at` is avoided while its layer has a healthy node; scores halve every
    `half_life` seconds and never exceed `max_score`."""

    def __init__(
        self,
        format: str = "sphinx",
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
        suspect_at: float = 3.0,
        half_life: float = 10.0,
        max_score: float = 192.0,
    ) -> None:
        if not (suspect_at > 0 and half_life > 0 and max_score >= suspect_at):
            raise ValueError("need suspect_at > 0, half_life > 0, max_score >= suspect_at")
        self.format = format
        self._rng = rng or random.SystemRandom()
        self._clock = clock
        self.suspect_at = suspect_at
        self.half_life = half_life
        self.max_score = max_score
        self._nodes: dict[bytes, TopologyNode] = {}
        self._by_layer: dict[int, list[TopologyNode]] = {layer: [] for layer in LAYERS}
        # node id -> wall time until which it is down (inf: until marked up)
        self._down: dict[bytes, float] = {}
        # node id -> (score, wall time it was last set); decayed when read
        self._scores: dict[bytes, tuple[float, float]] = {}
        self._listed: set[bytes] = set()
        #: routes (positions) that had to take a suspect or down node: no healthy one
        self.fallbacks = 0

    @classmethod
    def from_descriptors(cls, entries: Iterable, format: str = "sphinx", **kwargs) -> Topology:
        """A topology holding the verified `entries` (see `refresh`)."""
        topology = cls(format, **kwargs)
        topology.refresh(entries)
        return topology

    def refresh(self, entries: Iterable) -> RefreshResult:
        """Replace the snapshot with `entries`: `(encoded, signature)` byte pairs as the
        directory lists them, or `Descriptor`s that carry their signature. Every entry is
        verified again here (the directory is not trusted); bad ones are counted and left
        out; for a node listed twice the latest publication wins. A node no longer listed
        is no longer chosen, except that a layer the listing leaves empty keeps its
        unexpired nodes of the previous snapshot (`retained`): a listing must not strand
        the client. Down marks and suspicion survive; a node listed again after being
        left out starts with a clean score (the directory has seen it working)."""
        now = self._clock()
        rejected: Counter[str] = Counter()
        skipped = 0
        fresh: dict[bytes, TopologyNode] = {}
        for entry in entries:
            if isinstance(entry, Descriptor):
                encoded, signature = entry.encoded, entry.signature
            else:
                encoded, signature = entry
            try:
                descriptor = verify_descriptor(encoded, signature, now=now)
                info = NodeInfo(descriptor.identity_key, descriptor.routing_key)
            except DescriptorError as exc:
                rejected[type(exc).__name__] += 1
                continue
            except ValueError:
                # NodeInfo refuses routing keys outside the prime-order subgroup.
                rejected["UnusableRoutingKey"] += 1
                continue
            if descriptor.format != self.format:
                skipped += 1
                continue
            node = TopologyNode(descriptor.identity_key, info, descriptor.layer,
                                descriptor.format, descriptor.address, descriptor.expires_at,
                                descriptor)
            old = fresh.get(node.node_id)
            if old is None or old.descriptor.published_at < descriptor.published_at:
                fresh[node.node_id] = node
        listed = set(fresh)
        for node_id in listed - self._listed:
            self._scores.pop(node_id, None)
        retained = 0
        for layer in LAYERS:
            if any(n.layer == layer and n.expires_at > now for n in fresh.values()):
                continue
            for node in self._by_layer.get(layer, ()):
                if node.expires_at > now and node.node_id not in fresh:
                    fresh[node.node_id] = node
                    retained += 1
        self._listed = listed
        self._nodes = fresh
        self._by_layer = {layer: [] for layer in LAYERS}
        for node in sorted(fresh.values(), key=lambda n: n.node_id):
            self._by_layer[node.layer].append(node)
        return RefreshResult(len(listed), skipped, dict(rejected), retained)

    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, node_id: bytes) -> bool:
        return bytes(node_id) in self._nodes

    def node(self, node_id: bytes) -> TopologyNode:
        """The node with this id; KeyError when it is not in the snapshot."""
        return self._nodes[bytes(node_id)]

    def nodes(self, layer: int | None = None) -> list[TopologyNode]:
        """Every node of the snapshot, or of one layer, ordered by node id."""
        if layer is None:
            return sorted(self._nodes.values(), key=lambda n: n.node_id)
        return list(self._by_layer.get(layer, ()))

    def mark_down(self, node_id: bytes, seconds: float | None = None) -> None:
        """Stop choosing the node, for `seconds` or until `mark_up`."""
        until = float("inf") if seconds is None else self._clock() + seconds
        self._down[bytes(node_id)] = until

    def mark_up(self, node_id: bytes) -> None:
        """Choose the node again."""
        self._down.pop(bytes(node_id), None)

    def suspicion(self, node_id: bytes) -> float:
        """The node's current suspicion score (0 when clean), decayed to now."""
        entry = self._scores.get(bytes(node_id))
        if entry is None:
            return 0.0
        score, at = entry
        return score * math.exp2(-max(0.0, self._clock() - at) / self.half_life)

    def suspect(self, node_id: bytes, weight: float = 1.0) -> float:
        """Add `weight` to the node's score (capped at `max_score`); return the new
        score."""
        node_id = bytes(node_id)
        score = min(self.max_score, self.suspicion(node_id) + weight)
        self._scores[node_id] = (score, self._clock())
        return score

    def trust(self, node_id: bytes) -> None:
        """Clear the node's score: it was just seen working."""
        self._scores.pop(bytes(node_id), None)

    def is_suspect(self, node_id: bytes) -> bool:
        """True while the node's score is at or above `suspect_at`."""
        return self.suspicion(node_id) >= self.suspect_at

    def _healthy(self, node: TopologyNode) -> bool:
        return self.is_usable(node.node_id) and not self.is_suspect(node.node_id)

    def is_usable(self, node_id: bytes) -> bool:
        """In the snapshot, not expired and not marked down."""
        node = self._nodes.get(bytes(node_id))
        if node is None:
            return False
        now = self._clock()
        until = self._down.get(node.node_id)
        if until is not None:
            if until > now:
                return False
            del self._down[node.node_id]
        return node.expires_at > now

    def usable(self, layer: int) -> list[TopologyNode]:
        """The nodes of a layer that routes may use now."""
        return [n for n in self._by_layer.get(layer, ()) if self.is_usable(n.node_id)]

    def random_gateway(self) -> TopologyNode:
        """A healthy gateway chosen at random (drop cover traffic goes to one), the least
        suspect one when none is healthy; NoRoute when the snapshot has no gateway."""
        return self._choose(GATEWAY, set(), set())

    def _choose(self, layer: int, taken: set[bytes], avoid: set[bytes]) -> TopologyNode:
        now = self._clock()
        candidates = [n for n in self._by_layer.get(layer, ())
                      if n.node_id not in taken and n.expires_at > now]
        if not candidates:
            raise NoRoute(f"no node in the {LAYERS[layer]} layer")
        healthy = [n for n in candidates if self._healthy(n)]
        if healthy:
            preferred = [n for n in healthy if n.node_id not in avoid]
            return self._rng.choice(preferred or healthy)
        # Every node of the layer is suspect or down: the least suspect one still carries
        # traffic (a guess must never stop all of it); a down mark is the last resort.
        # A node to avoid (it just failed this sender) is passed over here too.
        self.fallbacks += 1
        pool = [n for n in candidates if self.is_usable(n.node_id)] or candidates
        pool = [n for n in pool if n.node_id not in avoid] or pool
        scores = {n.node_id: self.suspicion(n.node_id) for n in pool}
        least = min(scores.values())
        return self._rng.choice([n for n in pool if scores[n.node_id] == least])

    def select_route(self, gateway: bytes, hops: int = DEFAULT_HOPS,
                     avoid: Iterable[bytes] = ()) -> Route:
        """A route of `hops` hops (`layer_plan`) ending at `gateway`, one node per mix
        position, no node twice: a random healthy node, one in `avoid` only when its layer
        has no other healthy node, the least suspect when none is healthy. Raises
        `NoRoute` when the gateway is unknown, expired or down, or a layer has no node."""
        plan = layer_plan(hops)
        gateway = bytes(gateway)
        last = self._nodes.get(gateway)
        if last is None or last.layer != GATEWAY:
            raise NoRoute("the destination gateway is not a gateway of the snapshot")
        if not self.is_usable(gateway):
            raise NoRoute("the destination gateway is down or expired")
        avoid = {bytes(a) for a in avoid}
        chosen: list[TopologyNode] = []
        taken: set[bytes] = set()
        for layer in plan[:-1]:
            node = self._choose(layer, taken, avoid)
            chosen.append(node)
            taken.add(node.node_id)
        chosen.append(last)
        return Route(tuple(chosen))
