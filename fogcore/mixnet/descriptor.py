"""Node descriptors: what a mix node publishes to the directory, signed with its identity key.

The byte layout is specified in docs/directory.md. A descriptor (version 2) binds a node's
Ed25519 identity key to its current X25519 routing key, its VRF public key (the key its
delay proofs verify under, docs/vrf-delays.md §1.1), its place in the stratified topology,
the packet format it speaks, its address and a validity window. Version 1, which carried
no VRF key, is no longer accepted. The directory stores the exact
signed bytes, so anyone can check a listing again without trusting the directory.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import struct
import time
from dataclasses import dataclass
from typing import Any, Final

import nacl.bindings as nb
import nacl.exceptions
import nacl.signing

from fogcore import delays

__all__ = [
    "MAGIC",
    "VERSION",
    "LAYERS",
    "FORMATS",
    "MAX_LIFETIME",
    "MAX_CLOCK_SKEW",
    "Descriptor",
    "DescriptorError",
    "MalformedDescriptor",
    "InvalidKey",
    "InvalidSignature",
    "StaleDescriptor",
    "FutureDescriptor",
    "encode_descriptor",
    "decode_descriptor",
    "sign_descriptor",
    "verify_descriptor",
    "node_id_of",
]

MAGIC: Final = b"FOGD"
VERSION: Final = 2
#: Layer numbers and their names: three mix layers (stratified topology) and gateways.
LAYERS: Final = {0: "entry", 1: "mix", 2: "exit", 3: "gateway"}
#: Packet format codes on the wire and their names (as in `fogcore.store.NODE_FORMATS`).
FORMATS: Final = {1: "sphinx", 2: "kem"}
#: Longest validity window a descriptor may claim (a week), so a leaked old descriptor
#: cannot keep a node listed for ever.
MAX_LIFETIME: Final = 7 * 24 * 3600
#: How far in the future `published_at` may be before the descriptor is refused.
MAX_CLOCK_SKEW: Final = 300

KEY_SIZE: Final = 32
SIGNATURE_SIZE: Final = 64
MAX_ADDRESS: Final = 255

_HEAD = struct.Struct(">4sBBB")  # magic, version, layer, format
_TIMES = struct.Struct(">QQ")  # published_at, expires_at
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
_LAYER_BY_NAME: Final = {name: number for number, name in LAYERS.items()}
_FORMAT_BY_NAME: Final = {name: code for code, name in FORMATS.items()}


class DescriptorError(ValueError):
    """Base of every reason a descriptor is refused."""


class MalformedDescriptor(DescriptorError):
    """The bytes do not follow the layout, or a field holds a value outside its range."""


class InvalidKey(DescriptorError):
    """A key has the wrong size or is not a usable point (small order, not on the curve)."""


class InvalidSignature(DescriptorError):
    """The signature is not the identity key's signature over these exact bytes."""


class StaleDescriptor(DescriptorError):
    """The descriptor has expired."""


class FutureDescriptor(DescriptorError):
    """The descriptor claims to be published further in the future than clocks may drift."""


@dataclass(frozen=True, slots=True)
class Descriptor:
    """A decoded descriptor. `encoded` is the exact signed byte string; `signature` is empty
    for a descriptor that was only decoded, not signed or verified."""

    identity_key: bytes
    routing_key: bytes
    vrf_key: bytes
    layer: int
    format: str
    address: str
    published_at: int
    expires_at: int
    encoded: bytes
    signature: bytes = b""

    @property
    def node_id(self) -> str:
        """The node id: the identity key in lowercase hex (the packet formats name a hop by
        its identity key, so a directory id and a routing-info id are the same thing)."""
        return node_id_of(self.identity_key)

    @property
    def layer_name(self) -> str:
        """"entry", "mix", "exit" or "gateway"."""
        return LAYERS[self.layer]

    def info(self) -> dict[str, Any]:
        """The decoded fields as a JSON-ready dict (keys and bytes in lowercase hex)."""
        return {
            "node_id": self.node_id,
            "identity_key": self.identity_key.hex(),
            "routing_key": self.routing_key.hex(),
            "vrf_key": self.vrf_key.hex(),
            "version": VERSION,
            "layer": self.layer,
            "layer_name": self.layer_name,
            "format": self.format,
            "address": self.address,
            "published_at": self.published_at,
            "expires_at": self.expires_at,
        }


def node_id_of(identity_key: bytes) -> str:
    """The directory id of the node with this Ed25519 identity public key."""
    return bytes(identity_key).hex()


def _check_identity_key(key: bytes) -> None:
    if len(key) != KEY_SIZE:
        raise InvalidKey(f"identity key must be {KEY_SIZE} bytes, got {len(key)}")
    # Canonical, on the curve, not of small order: a small-order key would accept
    # signatures made without any secret.
    if not nb.crypto_core_ed25519_is_valid_point(key):
        raise InvalidKey("identity key is not a valid Ed25519 public key")


def _check_vrf_key(key: bytes, identity_key: bytes) -> None:
    if len(key) != KEY_SIZE:
        raise InvalidKey(f"VRF key must be {KEY_SIZE} bytes, got {len(key)}")
    # RFC 9381 validate_key refuses small-order keys (a proof under one says nothing);
    # libsodium's check is stricter (canonical, main subgroup), which a derived key meets.
    if not nb.crypto_core_ed25519_is_valid_point(key):
        raise InvalidKey("VRF key is not a valid edwards25519 public key")
    # The identity key as VRF key is the secret reuse version 2 exists to end.
    if key == identity_key:
        raise InvalidKey("VRF key must not be the identity key")


def _check_routing_key(key: bytes) -> None:
    if len(key) != KEY_SIZE:
        raise InvalidKey(f"routing key must be {KEY_SIZE} bytes, got {len(key)}")
    # A low-order X25519 point gives every sender the same all-zero shared secret;
    # libsodium refuses that result, so one trial multiplication detects it.
    try:
        nb.crypto_scalarmult(b"\x09" * 32, key)
    except nacl.exceptions.RuntimeError as exc:
        raise InvalidKey("routing key is a low-order X25519 point") from exc


def _check_address(address: str) -> None:
    raw = address.encode("utf-8", "surrogatepass")
    if not 1 <= len(raw) <= MAX_ADDRESS:
        raise MalformedDescriptor(f"address must be 1..{MAX_ADDRESS} bytes")
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or port != str(int(port)) or not 1 <= int(port) <= 65535:
        raise MalformedDescriptor("address must be host:port with a port in 1..65535")
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError as exc:
            raise MalformedDescriptor("address holds an invalid IPv6 literal") from exc
        return
    if not _HOSTNAME.match(host):
        raise MalformedDescriptor("address host must be a hostname, IPv4 or [IPv6]")


def _layer_number(layer: int | str) -> int:
    if isinstance(layer, str):
        if layer not in _LAYER_BY_NAME:
            raise MalformedDescriptor(f"unknown layer {layer!r}")
        return _LAYER_BY_NAME[layer]
    if layer not in LAYERS:
        raise MalformedDescriptor(f"layer must be one of {sorted(LAYERS)}")
    return int(layer)


def encode_descriptor(
    *,
    identity_key: bytes,
    routing_key: bytes,
    vrf_key: bytes,
    layer: int | str,
    format: str,
    address: str,
    published_at: int,
    expires_at: int,
) -> bytes:
    """The canonical byte string of a version 2 descriptor (docs/directory.md §2). Raises
    `InvalidKey` or `MalformedDescriptor` for a field that cannot be encoded."""
    identity_key = bytes(identity_key)
    routing_key = bytes(routing_key)
    vrf_key = bytes(vrf_key)
    _check_identity_key(identity_key)
    _check_routing_key(routing_key)
    _check_vrf_key(vrf_key, identity_key)
    layer_number = _layer_number(layer)
    if format not in _FORMAT_BY_NAME:
        raise MalformedDescriptor(f"format must be one of {sorted(_FORMAT_BY_NAME)}")
    _check_address(address)
    if not 0 <= published_at < expires_at < 2**64:
        raise MalformedDescriptor("need 0 <= published_at < expires_at < 2**64")
    raw_address = address.encode("utf-8")
    return b"".join(
        (
            _HEAD.pack(MAGIC, VERSION, layer_number, _FORMAT_BY_NAME[format]),
            bytes((KEY_SIZE,)),
            identity_key,
            bytes((KEY_SIZE,)),
            routing_key,
            bytes((KEY_SIZE,)),
            vrf_key,
            _TIMES.pack(published_at, expires_at),
            bytes((len(raw_address),)),
            raw_address,
        )
    )


class _Reader:
    """A cursor over the encoded bytes with one bounds check per read."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise MalformedDescriptor("descriptor is truncated")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]


def decode_descriptor(encoded: bytes) -> Descriptor:
    """Parse the byte string and check every field, but not the signature nor the time.
    Raises `MalformedDescriptor` or `InvalidKey`."""
    data = bytes(encoded)
    r = _Reader(data)
    magic, version, layer, format_code = _HEAD.unpack(r.take(_HEAD.size))
    if magic != MAGIC:
        raise MalformedDescriptor("not a fogcore node descriptor (bad magic)")
    if version != VERSION:
        # Version 1 carried no VRF key: its nodes proved delays with the identity seed.
        raise MalformedDescriptor(f"unsupported descriptor version {version}")
    if layer not in LAYERS:
        raise MalformedDescriptor(f"unknown layer {layer}")
    if format_code not in FORMATS:
        raise MalformedDescriptor(f"unknown packet format code {format_code}")
    identity_key = r.take(r.byte())
    routing_key = r.take(r.byte())
    vrf_key = r.take(r.byte())
    published_at, expires_at = _TIMES.unpack(r.take(_TIMES.size))
    raw_address = r.take(r.byte())
    if r.pos != len(data):
        raise MalformedDescriptor("trailing bytes after the descriptor")
    _check_identity_key(identity_key)
    _check_routing_key(routing_key)
    _check_vrf_key(vrf_key, identity_key)
    try:
        address = raw_address.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedDescriptor("address is not UTF-8") from exc
    _check_address(address)
    if published_at >= expires_at:
        raise MalformedDescriptor("expires_at must be after published_at")
    return Descriptor(
        identity_key=identity_key,
        routing_key=routing_key,
        vrf_key=vrf_key,
        layer=layer,
        format=FORMATS[format_code],
        address=address,
        published_at=published_at,
        expires_at=expires_at,
        encoded=data,
    )


def sign_descriptor(
    identity: bytes | nacl.signing.SigningKey,
    *,
    routing_key: bytes,
    layer: int | str,
    format: str,
    address: str,
    published_at: int | None = None,
    lifetime: int = 3600,
    vrf_key: bytes | None = None,
) -> Descriptor:
    """Build and sign a descriptor with the node's identity: an Ed25519 `SigningKey` or its
    32-byte seed. `published_at` defaults to now; the descriptor expires `lifetime`
    seconds later. `vrf_key` is the node's VRF public key; by default the one derived from
    the identity seed (`fogcore.delays.vrf_public_key`), which is what a node uses."""
    if isinstance(identity, nacl.signing.SigningKey):
        signing_key = identity
    else:
        seed = bytes(identity)
        if len(seed) != KEY_SIZE:
            raise InvalidKey(f"identity seed must be {KEY_SIZE} bytes, got {len(seed)}")
        signing_key = nacl.signing.SigningKey(seed)
    if not 0 < lifetime <= MAX_LIFETIME:
        raise MalformedDescriptor(f"lifetime must be in 1..{MAX_LIFETIME} seconds")
    published = int(time.time()) if published_at is None else int(published_at)
    if vrf_key is None:
        vrf_key = delays.vrf_public_key(bytes(signing_key))  # bytes(): the 32-byte seed
    encoded = encode_descriptor(
        identity_key=bytes(signing_key.verify_key),
        routing_key=routing_key,
        vrf_key=vrf_key,
        layer=layer,
        format=format,
        address=address,
        published_at=published,
        expires_at=published + lifetime,
    )
    signature = signing_key.sign(encoded).signature
    return dataclasses.replace(decode_descriptor(encoded), signature=signature)


def verify_descriptor(
    encoded: bytes,
    signature: bytes,
    *,
    now: float | None = None,
    max_clock_skew: int = MAX_CLOCK_SKEW,
    max_lifetime: int = MAX_LIFETIME,
) -> Descriptor:
    """Decode `encoded`, check the identity key's signature over it and its validity window
    at `now` (default: the current time). Returns the descriptor with its signature.

    Raises `MalformedDescriptor`, `InvalidKey`, `InvalidSignature`, `StaleDescriptor` or
    `FutureDescriptor` (all `DescriptorError`)."""
    descriptor = decode_descriptor(encoded)
    signature = bytes(signature)
    if len(signature) != SIGNATURE_SIZE:
        raise InvalidSignature(f"signature must be {SIGNATURE_SIZE} bytes, got {len(signature)}")
    try:
        nacl.signing.VerifyKey(descriptor.identity_key).verify(descriptor.encoded, signature)
    except nacl.exceptions.BadSignatureError as exc:
        raise InvalidSignature("signature does not match the identity key") from exc
    if descriptor.expires_at - descriptor.published_at > max_lifetime:
        raise MalformedDescriptor(f"validity window is longer than {max_lifetime} seconds")
    current = time.time() if now is None else float(now)
    if descriptor.published_at > current + max_clock_skew:
        raise FutureDescriptor("descriptor is published in the future")
    if descriptor.expires_at <= current:
        raise StaleDescriptor("descriptor has expired")
    return dataclasses.replace(descriptor, signature=signature)
