"""Pure-Python reference of the `kem` (v2) format: docs/packet-format.md §3.

KEM Sphinx with X25519 as the KEM: each hop gets its own encapsulation (an ephemeral X25519
public key, the "ciphertext"); the next hop's ciphertext rides in the tail of the current
hop's routing slot, so a node does one X25519 and no blinding. Common parts: `_hop_py`.
"""

from fogcore import _sodium_py as cp
from fogcore.packet import _hop_py as c

__all__ = [
    "BETA_SIZE",
    "FORMAT",
    "HEADER_SIZE",
    "LABEL_BUILD",
    "LABEL_HOP",
    "PACKET_SIZE",
    "SLOT_SIZE",
    "build_header",
    "next_element",
    "node_hop_keys",
    "relay_slot",
]

FORMAT = c.FORMAT_KEM
NAME = "kem"
LABEL_HOP = b"fogcore/kem/v2/hop"
LABEL_BUILD = b"fogcore/kem/v2/build"
ELEMENT_SIZE = 32
SLOT_SIZE = 2 + c.ID_SIZE + c.MAC_SIZE + ELEMENT_SIZE  # 82
TAIL_OFFSET = 2 + c.ID_SIZE + c.MAC_SIZE  # 50: next hop's ciphertext
BETA_SIZE = c.MAX_HOPS * SLOT_SIZE  # 410
HEADER_SIZE = ELEMENT_SIZE + BETA_SIZE + c.MAC_SIZE  # 458
PACKET_SIZE = HEADER_SIZE + c.PAYLOAD_SIZE  # 2506


def node_hop_keys(routing_secret: bytes, routing_public: bytes, ct: bytes):
    """Decapsulation and hop keys at a node (§3.3 steps 1-2), None for an all-zero DH.
    The KDF input binds the DH output to both public keys: ct || pk || dh."""
    try:
        dh = cp.x25519(routing_secret, ct)
    except ValueError:
        return None
    return c.hop_keys(LABEL_HOP, bytes(ct) + bytes(routing_public) + dh)


def next_element(ct: bytes, keys, slot: bytes) -> bytes:
    """The next hop's ciphertext: the tail of this hop's slot."""
    return bytes(slot[TAIL_OFFSET:SLOT_SIZE])


def relay_slot(route, i: int, gamma_next: bytes, cts) -> bytes:
    """The RELAY slot of hop i: next node id, its MAC and its ciphertext."""
    return c.make_slot(SLOT_SIZE, c.CMD_RELAY, 0, route[i + 1].node_id, gamma_next, cts[i + 1])


def encapsulate(ephemeral: bytes, node):
    """(ct, hop keys) for one hop: ct = X25519(e, G), dh = X25519(e, pk)."""
    ct = cp.x25519_base(ephemeral)
    dh = cp.x25519(ephemeral, node.routing_public_key)
    return ct, c.hop_keys(LABEL_HOP, ct + node.routing_public_key + dh)


def build_header(route, final_slot: bytes, seed: bytes, method: str = "sequential"):
    """(header bytes, hop keys of every hop) for `route` ending in `final_slot` (§3.4).
    `method` is accepted for symmetry with `sphinx` and ignored."""
    e = c.kdf(LABEL_BUILD, seed, 32 * c.MAX_HOPS + BETA_SIZE)
    pad = e[32 * c.MAX_HOPS :]
    cts, keys = [], []
    for i, node in enumerate(route):
        ct, k = encapsulate(e[32 * i : 32 * i + 32], node)
        cts.append(ct)
        keys.append(k)
    beta, gamma = c.build_routing(
        SLOT_SIZE, keys, final_slot, pad, lambda i, g: relay_slot(route, i, g, cts))
    return cts[0] + beta + gamma, keys
