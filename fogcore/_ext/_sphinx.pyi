"""The `sphinx` (v1) packet format in C."""

from collections.abc import Buffer, Sequence
from typing import Any

FORMAT: int
NAME: str
LABEL_HOP: bytes
LABEL_BUILD: bytes
ELEMENT_SIZE: int
SLOT_SIZE: int
BETA_SIZE: int
HEADER_SIZE: int
PACKET_SIZE: int
METHODS: tuple[str, ...]

def node_hop_keys(routing_secret: Buffer, routing_public: Buffer, alpha: Buffer) -> bytes | None:
    """The 256 bytes of hop keys at a node, None when X25519(y, α) is all zero."""

def next_element(alpha: Buffer, keys: Buffer, slot: Buffer | None = None) -> bytes | None:
    """α' = X25519(blind, α); None when all zero."""

def route_arrays(route: Sequence[Any], need_ids: bool = True) -> tuple[bytes, bytes]:
    """(node ids, routing keys) of a route, concatenated."""

def build_header(route: Sequence[Any], final_slot: Buffer, seed: Buffer,
                 method: str = "sequential") -> tuple[bytes, list[bytes]]:
    """(header, [256 bytes of hop keys per hop])."""
