"""The stratified topology a client routes through (docs/client.md §1).

A snapshot of verified node descriptors, sorted into the three mix layers (entry, mix,
exit) and the gateways that hold mailboxes. A route of `hops` packet hops is `hops - 1`
mix nodes walking the layers in order, then the recipient's gateway (`layer_plan`). Nodes
marked down (for a while or until marked up) and expired descriptors are never chosen;
nodes to `avoid` (those of a route that just failed) are passed over while a layer has
another choice.
"""

from __future__ import annotations

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
    """No route can be built: a layer has no usable node, or the gateway is unusable."""


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
    """What a refresh kept: `accepted` nodes, `skipped` nodes of another packet format, and
    `rejected` entries counted by reason."""

    accepted: int
    skipped: int
    rejected: dict[str, int]


class Topology:
    """A refreshable snapshot of the nodes of one packet format, with route selection.

    `rng` (default: the system's secure source) picks nodes; `clock()` is wall time in
    seconds (descriptor validity and down marks)."""

    def __init__(
        self,
        format: str = "sphinx",
        *,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.format = format
        self._rng = rng or random.SystemRandom()
        self._clock = clock
        self._nodes: dict[bytes, TopologyNode] = {}
        self._by_layer: dict[int, list[TopologyNode]] = {layer: [] for layer in LAYERS}
        # node id -> wall time until which it is down (inf: until marked up)
        self._down: dict[bytes, float] = {}

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
        out; for a node listed twice the latest publication wins. Down marks survive."""
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
        self._nodes = fresh
        self._by_layer = {layer: [] for layer in LAYERS}
        for node in sorted(fresh.values(), key=lambda n: n.node_id):
            self._by_layer[node.layer].append(node)
        return RefreshResult(len(fresh), skipped, dict(rejected))

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
        """A usable gateway chosen at random (drop cover traffic goes to one)."""
        gateways = self.usable(GATEWAY)
        if not gateways:
            raise NoRoute("no usable gateway")
        return self._rng.choice(gateways)

    def select_route(self, gateway: bytes, hops: int = DEFAULT_HOPS,
                     avoid: Iterable[bytes] = ()) -> Route:
        """A route of `hops` hops (`layer_plan`) ending at `gateway`, one random usable node
        per mix position, no node twice. Nodes in `avoid` are chosen only when their layer
        has no other usable node. Raises `NoRoute`."""
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
            candidates = [n for n in self.usable(layer) if n.node_id not in taken]
            if not candidates:
                raise NoRoute(f"no usable node in the {LAYERS[layer]} layer")
            preferred = [n for n in candidates if n.node_id not in avoid]
            node = self._rng.choice(preferred or candidates)
            chosen.append(node)
            taken.add(node.node_id)
        chosen.append(last)
        return Route(tuple(chosen))
