"""A node's keys on disk: the Ed25519 identity seed (the node id) and one X25519 routing
key per key epoch. The node's VRF key is derived from the identity seed under its own label
(`fogcore.delays.vrf_secret_key`), never the seed itself, so it is not stored.

Routing keys rotate every `key_epoch_s` seconds; after a rotation the previous key stays
accepted for `overlap_s` seconds, so packets built just before the rotation from the
previous descriptor still get through. The next epoch's key exists ahead of time (it can be
published before it is needed). The file is JSON, written atomically with mode 0600.
"""

import json
import os
import tempfile
import time

from fogcore.delays import vrf_public_key, vrf_secret_key
from fogcore.packet import NodeKeys

__all__ = ["KeyStore", "KeyStoreError"]

_VERSION = 1


class KeyStoreError(ValueError):
    """The key file is unreadable or malformed."""


class KeyStore:
    """Identity and per-epoch routing keys, kept in `path` (None: in memory only)."""

    def __init__(self, path: str | None = None, *, key_epoch_s: int = 3600,
                 overlap_s: int = 300, identity_seed: bytes | None = None, clock=time.time):
        if key_epoch_s < 1 or not 0 <= overlap_s < key_epoch_s:
            raise ValueError("need key_epoch_s >= 1 and 0 <= overlap_s < key_epoch_s")
        self.path = path
        self.key_epoch_s = key_epoch_s
        self.overlap_s = overlap_s
        self._clock = clock
        self._routing: dict[int, bytes] = {}
        self._cache: dict[int, NodeKeys] = {}
        seed = None
        if path and os.path.exists(path):
            seed = self._load(path)
        if seed is None:
            seed = bytes(identity_seed) if identity_seed is not None else os.urandom(32)
        elif identity_seed is not None and bytes(identity_seed) != seed:
            raise KeyStoreError("the key file holds a different identity")
        if len(seed) != 32:
            raise KeyStoreError("identity seed must be 32 bytes")
        self.identity_seed = seed
        self.node_id = NodeKeys(seed, bytes(32)).node_id
        #: the secret key of the node's delay proofs, and its public half (descriptor v2)
        self.vrf_secret_key = vrf_secret_key(seed)
        self.vrf_public_key = vrf_public_key(seed)
        self._save()

    def _load(self, path: str) -> bytes:
        try:
            with open(path, encoding="ascii") as fh:
                data = json.load(fh)
            if data.get("version") != _VERSION:
                raise KeyStoreError(f"{path}: unsupported key file version")
            seed = bytes.fromhex(data["identity_seed"])
            self._routing = {int(e): bytes.fromhex(k) for e, k in data["routing"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise KeyStoreError(f"{path}: {exc}") from None
        if any(len(k) != 32 for k in self._routing.values()):
            raise KeyStoreError(f"{path}: routing keys must be 32 bytes")
        return seed

    def _save(self) -> None:
        if not self.path:
            return
        data = {
            "version": _VERSION,
            "identity_seed": self.identity_seed.hex(),
            "routing": {str(e): k.hex() for e, k in sorted(self._routing.items())},
        }
        folder = os.path.dirname(os.path.abspath(self.path))
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".keys-")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                json.dump(data, fh, indent=1)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def epoch_at(self, t: float | None = None) -> int:
        """The key epoch at unix time `t` (default now)."""
        return int((self._clock() if t is None else t) // self.key_epoch_s)

    def keys_for(self, epoch: int) -> NodeKeys:
        """The keys of `epoch`, creating (and saving) its routing key when new. Keys older
        than the previous epoch are erased from memory and disk."""
        keys = self._cache.get(epoch)
        if keys is not None:
            return keys
        if epoch not in self._routing:
            self._routing[epoch] = os.urandom(32)
            oldest = min(epoch, self.epoch_at()) - 1
            for old in [e for e in self._routing if e < oldest]:
                del self._routing[old]
                self._cache.pop(old, None)
            self._save()
        keys = self._cache[epoch] = NodeKeys(self.identity_seed, self._routing[epoch])
        return keys

    def current(self, t: float | None = None) -> tuple[int, NodeKeys]:
        """(epoch, keys) in force at `t`."""
        epoch = self.epoch_at(t)
        return epoch, self.keys_for(epoch)

    def previous(self, t: float | None = None) -> tuple[int, NodeKeys] | None:
        """(epoch, keys) of the previous epoch while its overlap window lasts, else None."""
        t = self._clock() if t is None else t
        epoch = self.epoch_at(t)
        if t - epoch * self.key_epoch_s >= self.overlap_s or (epoch - 1) not in self._routing:
            return None
        return epoch - 1, self.keys_for(epoch - 1)

    def upcoming(self, t: float | None = None) -> tuple[int, NodeKeys]:
        """(epoch, keys) of the next epoch, for publishing ahead of the rotation."""
        epoch = self.epoch_at(t) + 1
        return epoch, self.keys_for(epoch)
