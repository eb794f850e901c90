"""Generate the test vectors of docs/packet-format.md §7 with the pure-Python reference.

    python -m fogcore.packet._vectors OUTDIR

writes `sphinx-1hop.json`, `sphinx-3hop.json`, `sphinx-5hop.json`, `sphinx-surb-3hop.json`,
`sphinx-rejects.json` and the same for `kem`. Every input is fixed (seeds derived from
names), so the output is identical on every run; the tests regenerate and compare it.
"""

import hashlib
import json
import sys
from pathlib import Path

from fogcore import _sodium_py as cp
from fogcore.packet import _batch_py
from fogcore.packet import _hop_py as c
from fogcore.packet.keys import NodeKeys
from fogcore.packet.outcome import Kind, Outcome, Reason
from fogcore.packet.surb import build_reply, make_surb, open_reply

__all__ = ["generate", "main"]

_FORMATS = {"sphinx": c.FORMAT_SPHINX, "kem": c.FORMAT_KEM}


def _seed(name: str) -> bytes:
    """A fixed 32-byte seed named by a string: SHA-256 of "fogcore vector " + name."""
    return hashlib.sha256(b"fogcore vector " + name.encode()).digest()


class _SetFilter:
    """An exact replay filter; vectors must not depend on a probabilistic one."""

    def __init__(self):
        self.seen: set[bytes] = set()

    def check_and_add(self, tag: bytes) -> bool:
        seen = tag in self.seen
        self.seen.add(tag)
        return seen


def _nodes(n: int) -> list[NodeKeys]:
    return [NodeKeys.from_seed(_seed(f"node {i}")) for i in range(n)]


def _node_json(k: NodeKeys) -> dict:
    return {
        "identity_seed": k.identity_seed.hex(),
        "routing_secret": k.routing_secret.hex(),
        "node_id": k.node_id.hex(),
        "routing_public_key": k.routing_public.hex(),
    }


def _outcome_json(o: Outcome) -> dict:
    out = {"kind": o.kind.name}
    if o.kind == Kind.REJECT:
        out["reason"] = o.reason.name
    for name in ("address", "surb_id", "tag", "payload"):
        value = getattr(o, name)
        if value is not None:
            out[name] = value.hex()
    return out


def _hop_details(fmt: int, node: NodeKeys, frame: bytes) -> dict:
    """Intermediate values at one hop, to help an implementer find where it diverges."""
    mod = _batch_py.FORMATS[fmt]
    element = frame[c.FRAME_HEADER_SIZE : c.FRAME_HEADER_SIZE + 32]
    dh = cp.x25519(node.routing_secret, element)
    keys = mod.node_hop_keys(node.routing_secret, node.routing_public, element)
    return {"element": element.hex(), "dh": dh.hex(), "hop_keys": keys.raw.hex()}


def _walk(fmt: int, nodes: list[NodeKeys], frame: bytes):
    """Process `frame` along `nodes`: (hops, last outcome)."""
    hops = []
    outcome = None
    for node in nodes:
        details = _hop_details(fmt, node, frame)
        outcome = _batch_py.process_packet(node, frame, _SetFilter())
        hops.append({"frame": frame.hex(), **details, "outcome": _outcome_json(outcome)})
        if outcome.kind == Kind.FORWARD:
            frame = outcome.packet
    return hops, outcome


def route_vector(fmt_name: str, n: int, message: bytes) -> dict:
    """A packet through n hops to a mailbox, with the frame and outcome at every hop."""
    fmt = _FORMATS[fmt_name]
    nodes = _nodes(n)
    mailbox = _seed("mailbox")
    seed = _seed(f"{fmt_name} packet {n}")
    frame, tags = _batch_py.build_packet(fmt, [k.info() for k in nodes], c.CMD_DELIVER, mailbox,
                                    b"", message, seed)
    hops, last = _walk(fmt, nodes, frame)
    assert last.kind == Kind.DELIVER and last.payload == message
    return {
        "description": f"{fmt_name}: {n}-hop packet delivered to a mailbox",
        "format": fmt_name,
        "nodes": [_node_json(k) for k in nodes],
        "mailbox": mailbox.hex(),
        "message": message.hex(),
        "packet_seed": seed.hex(),
        "tags": [t.hex() for t in tags],
        "hops": hops,
    }


def surb_vector(fmt_name: str, n: int, message: bytes) -> dict:
    """A SURB through n hops, a reply built from it, every hop, and the opened reply."""
    fmt = _FORMATS[fmt_name]
    nodes = _nodes(n)
    mailbox = _seed("owner mailbox")
    surb_seed = _seed(f"{fmt_name} surb {n}")
    surb, key = make_surb([k.info() for k in nodes], mailbox, fmt_name, rng=lambda _: surb_seed)
    first_hop, frame = build_reply(surb, message)
    hops, last = _walk(fmt, nodes, frame)
    assert last.kind == Kind.REPLY and open_reply(key, last.payload) == message
    return {
        "description": f"{fmt_name}: SURB through {n} hops and the reply sent with it",
        "format": fmt_name,
        "nodes": [_node_json(k) for k in nodes],
        "mailbox": mailbox.hex(),
        "surb_seed": surb_seed.hex(),
        "surb": surb.to_bytes().hex(),
        "surb_key": key.to_bytes().hex(),
        "message": message.hex(),
        "first_hop": first_hop.hex(),
        "hops": hops,
    }


def _tampered(frame: bytes, offset: int, mask: int = 1) -> bytes:
    out = bytearray(frame)
    out[offset] ^= mask
    return bytes(out)


def reject_vector(fmt_name: str) -> dict:
    """Frames that node 0 must reject, each with its reason, processed in order with one
    replay filter (so the `REPLAY` case follows the accepted packet it repeats)."""
    fmt = _FORMATS[fmt_name]
    mod = _batch_py.FORMATS[fmt]
    nodes = _nodes(2)
    route = [k.info() for k in nodes]
    mailbox = _seed("mailbox")
    good, _ = _batch_py.build_packet(fmt, route, c.CMD_DELIVER, mailbox, b"", b"ok",
                                _seed(f"{fmt_name} reject good"))
    one_hop, _ = _batch_py.build_packet(fmt, route[:1], c.CMD_DELIVER, mailbox, b"", b"ok",
                                   _seed(f"{fmt_name} reject payload"))
    # A validly MACed header whose only slot holds an unknown command.
    bad_slot = c.make_slot(mod.SLOT_SIZE, 0x7F, 0, mailbox)
    header, keys = mod.build_header(route[:1], bad_slot, _seed(f"{fmt_name} reject command"))
    bad_command = c.pack_frame_header(fmt, mod.PACKET_SIZE) + header + bytes(c.PAYLOAD_SIZE)
    payload_at = c.FRAME_HEADER_SIZE + mod.HEADER_SIZE
    cases = [
        ("empty frame", b""),
        ("truncated frame", good[:-1]),
        ("frame with an extra byte", good + b"\0"),
        ("length field off by one", _tampered(good, 3)),
        ("framing version 2", _tampered(good, 0, 0x03)),
        ("unknown format 9", _tampered(good, 1, fmt ^ 9)),
        ("element u = 0 (order 2)", good[:4] + bytes(32) + good[36:]),
        ("element u = 1 (order 4)", good[:4] + (1).to_bytes(32, "little") + good[36:]),
        ("flipped bit in the element", _tampered(good, 4 + 7, 0x10)),
        ("flipped bit in the routing block", _tampered(good, 4 + 40)),
        ("flipped bit in the MAC", _tampered(good, 4 + mod.HEADER_SIZE - 1, 0x80)),
        ("valid packet", good),
        ("the same packet again", good),
        ("unknown routing command", bad_command),
        ("payload modified, last hop", _tampered(one_hop, payload_at + 1000)),
    ]
    flt = _SetFilter()
    out = []
    for name, frame in cases:
        outcome = _batch_py.process_packet(nodes[0], frame, flt)
        out.append({"name": name, "frame": frame.hex(), "outcome": _outcome_json(outcome)})
    reasons = [o["outcome"].get("reason") for o in out]
    assert set(reasons) >= {r.name for r in Reason if r != Reason.NONE}, reasons
    return {
        "description": f"{fmt_name}: frames processed in order by node 0 with one replay filter",
        "format": fmt_name,
        "nodes": [_node_json(k) for k in nodes],
        "cases": out,
    }


def generate() -> dict[str, dict]:
    """Every vector file, by file name."""
    files = {}
    for name in _FORMATS:
        files[f"{name}-1hop.json"] = route_vector(name, 1, b"")
        files[f"{name}-3hop.json"] = route_vector(name, 3, b"Betanet test vector")
        long_message = bytes(i % 251 for i in range(c.MESSAGE_CAPACITY))
        files[f"{name}-5hop.json"] = route_vector(name, 5, long_message)
        files[f"{name}-surb-3hop.json"] = surb_vector(name, 3, b"a reply through a SURB")
        files[f"{name}-rejects.json"] = reject_vector(name)
    return files


def dumps(vector: dict) -> str:
    """The exact text written to a vector file."""
    return json.dumps(vector, indent=1, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write every vector file into the directory given as the only argument."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m fogcore.packet._vectors OUTDIR", file=sys.stderr)
        return 2
    outdir = Path(argv[0])
    outdir.mkdir(parents=True, exist_ok=True)
    for name, vector in generate().items():
        (outdir / name).write_text(dumps(vector))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
