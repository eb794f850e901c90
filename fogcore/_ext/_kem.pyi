"""The `kem` (v2) packet format in C."""

from collections.abc import Buffer, Sequence
from typing import Any

FORMAT: int
NAME: str
LABEL_HOP: bytes
LABEL_BUILD: bytes
ELEMENT_SIZE: int
SLOT_SIZE: int
TAIL_OFFSET: int
BETA_SIZE: int
HEADER_SIZE: int
PACKET_SIZE: int

def node_hop_keys(routing_secret: Buffer, routing_public: Buffer, ct: Buffer) -> bytes | None:
    """The 256 bytes of hop keys at a node, None for an all-zero DH."""

def next_element(ct: Buffer, keys: Buffer, slot: Buffer) -> bytes:
    """The next hop's ciphertext: the tail of the decrypted slot."""

def build_header(route: Sequence[Any], final_slot: Buffer, seed: Buffer,
                 method: str = "sequential") -> tuple[bytes, list[bytes]]:
    """(header, [256 bytes of hop keys per hop])."""
