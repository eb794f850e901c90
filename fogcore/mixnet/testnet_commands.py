"""`fogcore up`, `fogcore ping`, `fogcore send` and `fogcore recv` (docs/testnet.md).

`up` runs the local testnet in the foreground; the other three find it through the state
file it keeps in the data directory and talk to it as an ordinary client would: the
directory over HTTP, packets over TCP to entry nodes, mailboxes fetched from gateways.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

from fogcore.cli import CommandError

__all__ = ["COMMANDS", "default_testnet_dir"]


def default_testnet_dir() -> Path:
    """`<fogcore data dir>/testnet`."""
    from fogcore.store import default_data_dir

    return default_data_dir() / "testnet"


def _loop_factory():
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def _add_data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", metavar="DIR", type=Path, default=None,
                        help="testnet data directory (default <data dir>/testnet)")


def _stderr_progress(command: str):
    """A progress callback printing `fogcore COMMAND: line` on stderr (stdout stays JSON)."""

    def progress(line: str) -> None:
        print(f"fogcore {command}: {line}", file=sys.stderr, flush=True)

    return progress


def _quiet(line: str) -> None:
    """The progress callback of library callers: says nothing."""


# ------------------------------------------------------------------------------- up

#: signals that stop `up` (a closed terminal's SIGHUP too: the testnet is cleaned up)
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _add_up(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nodes", type=int, default=9,
                        help="mix nodes, split into entry/mix/exit layers (default 9)")
    parser.add_argument("--gateways", type=int, default=2, help="gateways (default 2)")
    parser.add_argument("--format", choices=("sphinx", "kem"), default="sphinx")
    parser.add_argument("--host", default="127.0.0.1", help="API address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="API port (default 8000)")
    parser.add_argument("--mean-delay-ms", type=float, default=10.0,
                        help="mean mixing delay per hop (default 10 ms)")
    _add_data(parser)


def _up(args: argparse.Namespace) -> int:
    from fogcore.mixnet.testnet import Testnet, TestnetError, TestnetOptions

    if args.nodes < 3 or args.gateways < 1:
        raise CommandError("need --nodes >= 3 and --gateways >= 1", 2)
    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    progress = _stderr_progress("up")
    options = TestnetOptions(data_dir=args.data or default_testnet_dir(), nodes=args.nodes,
                             gateways=args.gateways, format=args.format, api_host=args.host,
                             api_port=args.port, mean_delay_ms=args.mean_delay_ms,
                             max_delay_ms=max(100.0, 50 * args.mean_delay_ms),
                             progress=progress)

    async def main() -> int:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        testnet = Testnet(options)

        def on_signal(sig: int) -> None:
            # The first Ctrl-C/SIGTERM/SIGHUP stops the testnet (during start-up at once, later
            # with the nodes' graceful leave); another one cuts the nodes' grace short.
            if stop.is_set():
                testnet.cut_grace()
            else:
                received.append(sig)
            stop.set()

        received: list[int] = []
        for sig in _STOP_SIGNALS:
            loop.add_signal_handler(sig, on_signal, sig)
        try:
            start = loop.create_task(testnet.start())
            stopper = loop.create_task(stop.wait())
            await asyncio.wait({start, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if not start.done():
                progress("interrupted: stopping what was started")
                start.cancel()
                await asyncio.gather(start, return_exceptions=True)
                return 128 + received[0]  # as a shell reports the signal: 130 for Ctrl-C
            stopper.cancel()
            start.result()
            print(testnet.describe(), flush=True)
            await stop.wait()
            print("stopping: nodes drain their queues (Ctrl-C again: at once)…", flush=True)
        except TestnetError as exc:
            raise CommandError(str(exc)) from None
        finally:
            await testnet.stop()
            for sig in _STOP_SIGNALS:
                loop.remove_signal_handler(sig)
        print("testnet stopped", flush=True)
        return 0

    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(main())


# ------------------------------------------------------------------------------- clients


def client_config(fmt: str, hops: int):
    """The `ClientConfig` of `ping`, `send` and `recv`: the library's defaults (topology
    refresh, suspicion and its decay) with a fast mailbox poll for a local testnet."""
    from fogcore.mixnet.client import ClientConfig

    return ClientConfig(format=fmt, hops=hops, poll_interval=0.02, ack_timeout=3.0,
                        max_attempts=6)


class _Session:
    """A client of the running testnet: directory, topology, transport, `MixClient`
    (which refreshes its topology from the same directory while it runs)."""

    def __init__(self, data_dir: Path, hops: int, identity: dict | None = None):
        self.data_dir = data_dir
        self.hops = hops
        self.identity = identity
        self.client = None
        #: the directory's URL and the usable gateways it lists, once entered
        self.api = ""
        self.gateways: list[bytes] = []
        self._closers = []

    async def __aenter__(self):
        from fogcore.mixnet.client import MixClient
        from fogcore.mixnet.directory_client import DirectoryClient, DirectoryError
        from fogcore.mixnet.resolver import DirectoryResolver
        from fogcore.mixnet.testnet import TestnetError, read_state
        from fogcore.mixnet.topology import GATEWAY, Topology
        from fogcore.mixnet.transport import TcpTransport

        state = read_state(self.data_dir)
        api, fmt = state["api"], state["format"]
        directory = DirectoryClient(api)
        resolver = DirectoryResolver(api)
        self._closers += [directory.aclose, resolver.aclose]
        topology = Topology(fmt)
        try:
            async with asyncio.timeout(15):
                await directory.refresh(topology)
        except (DirectoryError, TimeoutError) as exc:
            for close in reversed(self._closers):
                await close()
            raise TestnetError(f"the testnet's directory at {api} did not answer: "
                               f"{exc!r}") from None
        transport = TcpTransport(resolver)
        self._closers.append(transport.close)
        gateways = [n.node_id for n in topology.usable(GATEWAY)]
        if not gateways:
            for close in reversed(self._closers):
                await close()
            raise TestnetError(f"the testnet's directory at {api} lists no usable gateway")
        self.api, self.gateways = api, gateways
        identity = self.identity
        gateway = None
        mailbox = None
        if identity is not None:
            gateway = bytes.fromhex(identity["gateway"]) if identity.get("gateway") else None
            mailbox = bytes.fromhex(identity["mailbox"])
            if gateway not in gateways:
                gateway = None  # a new testnet: take one of its gateways
        if gateway is None:
            gateway = gateways[int.from_bytes(os.urandom(2), "big") % len(gateways)]
            if identity is not None:
                identity["gateway"] = gateway.hex()
        self.client = MixClient(topology, transport, gateway, mailbox=mailbox,
                                config=client_config(fmt, self.hops), directory=directory)
        await self.client.start()
        return self

    async def __aexit__(self, *exc):
        if self.client is not None:
            await self.client.stop()
        for close in reversed(self._closers):
            await close()


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[k]


def _add_ping(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--count", type=int, default=10, help="loop messages (default 10)")
    parser.add_argument("--interval", type=float, default=0.02,
                        help="seconds between sends (default 0.02)")
    parser.add_argument("--timeout", type=float, default=10.0,
                        help="seconds to wait for the last loop (default 10)")
    parser.add_argument("--hops", type=int, default=4, help="hops per route, 2-5 (default 4)")
    parser.add_argument("--loop-timeout", type=float, default=2.0,
                        help="seconds after which a loop counts as lost and its nodes "
                             "become suspect (default 2)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    _add_data(parser)


async def run_ping(client, count: int, *, interval: float = 0.02, timeout: float = 10.0,
                   loop_timeout: float = 2.0) -> dict:
    """Send `count` loops through `client` (started) back to its own mailbox, one every
    `interval` seconds, and wait up to `timeout` seconds for the last. Loops go through
    `CoverTraffic`, so each one that returns clears its nodes and each one missing after
    `loop_timeout` raises their suspicion: later loops route around a dead node."""
    from fogcore.mixnet.cover import CoverTraffic

    cover = CoverTraffic(client, loop_rate=0, drop_rate=0, loop_timeout=loop_timeout)
    cover_handler = client.loop_handler
    sent: dict[bytes, float] = {}
    latencies: dict[bytes, float] = {}
    errors = 0
    done = asyncio.Event()

    def on_loop(loop_id: bytes, received_at: float) -> None:
        if loop_id in sent and loop_id not in latencies:
            latencies[loop_id] = (received_at - sent[loop_id]) * 1000
            if len(latencies) == len(sent):
                done.set()
        cover_handler(loop_id, received_at)

    client.loop_handler = on_loop
    for _ in range(count):
        started = time.time()
        loop_id = await cover.send_loop()
        if loop_id is None:
            errors += 1
        else:
            sent[loop_id] = started
        await asyncio.sleep(interval)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    # Until every loop is back, at most `timeout`; a late loop still counts as delivered,
    # while its lateness (`loop_timeout`) has already made its nodes suspect.
    while len(latencies) < len(sent) and loop.time() < deadline:
        # `done` may have been set while loops were still being sent (every loop sent so
        # far was back): clear it, or the wait returns at once and this loop spins
        # without ever yielding to the event loop.
        done.clear()
        try:
            async with asyncio.timeout(min(0.25, max(0.0, deadline - loop.time()))):
                await done.wait()
        except TimeoutError:
            cover.expire_loops()
    cover.expire_loops()
    values = list(latencies.values())
    topology = client.topology
    nodes = sorted(set(cover.loops_sent_via) | {n.node_id for n in topology.nodes()})
    return {
        "format": client.config.format,
        "hops": client.config.hops,
        "sent": count,
        "delivered": len(values),
        "lost": count - len(values),
        "loss": (count - len(values)) / count if count else 0.0,
        "send_errors": errors,
        "latency_ms": {"p50": _percentile(values, 0.5), "p90": _percentile(values, 0.9),
                       "p99": _percentile(values, 0.99),
                       "min": min(values, default=0.0), "max": max(values, default=0.0)},
        "client": dict(sorted(client.stats.items())),
        "cover": dict(sorted(cover.stats.items())),
        "transport": dict(sorted(getattr(client.transport, "counters", {}).items())),
        "nodes": [{
            "node_id": node_id.hex(),
            "layer": topology.node(node_id).layer_name if node_id in topology else None,
            "in_topology": node_id in topology,
            "loops_sent": cover.loops_sent_via[node_id],
            "loops_returned": cover.loops_returned_via[node_id],
            "suspicion": round(topology.suspicion(node_id), 3),
        } for node_id in nodes],
    }


async def ping(data_dir: Path, count: int, *, hops: int = 4, interval: float = 0.02,
               timeout: float = 10.0, loop_timeout: float = 2.0) -> dict:
    """Send `count` loop messages through the running testnet back to a fresh mailbox
    (`run_ping`): delivery, loss, round-trip latency percentiles (milliseconds), the
    client's counters and the loops sent and returned through each node."""
    async with _Session(data_dir, hops) as session:
        return await run_ping(session.client, count, interval=interval, timeout=timeout,
                              loop_timeout=loop_timeout)


def _ping(args: argparse.Namespace) -> int:
    from fogcore.mixnet.testnet import TestnetError

    if args.count < 1 or not 2 <= args.hops <= 5:
        raise CommandError("need --count >= 1 and 2 <= --hops <= 5", 2)
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            result = runner.run(ping(args.data or default_testnet_dir(), args.count,
                                     hops=args.hops, interval=args.interval,
                                     timeout=args.timeout, loop_timeout=args.loop_timeout))
    except TestnetError as exc:
        raise CommandError(str(exc)) from None
    if args.json:
        print(json.dumps(result))
    else:
        lat = result["latency_ms"]
        print(f"{result['delivered']}/{result['sent']} delivered through {result['hops']} "
              f"hops ({result['format']}), loss {result['loss']:.1%}; latency ms "
              f"p50 {lat['p50']:.1f} p90 {lat['p90']:.1f} p99 {lat['p99']:.1f}")
    return 0 if result["lost"] == 0 else 1


# ------------------------------------------------------------------------------- identities


def _identity_path(data_dir: Path, name: str) -> Path:
    if not name or not all(c.isalnum() or c in "-_." for c in name) or name[0] == ".":
        raise ValueError("an identity name is letters, digits, - _ .")
    return data_dir / "clients" / f"{name}.json"


def _load_identity(data_dir: Path, name: str) -> dict:
    """The client identity `name` (mailbox, gateway, reply keys, unread messages), created
    on first use."""
    path = _identity_path(data_dir, name)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {"mailbox": os.urandom(32).hex(), "gateway": "", "surb_keys": {}, "inbox": []}


def _save_identity(data_dir: Path, name: str, identity: dict) -> None:
    path = _identity_path(data_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    # The mailbox id is the capability to read it, and the keys open replies: 0600.
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as fh:
        json.dump(identity, fh, indent=1)
    os.replace(tmp, path)


class _ReplyOpener:
    """Wraps a transport: replies to SURBs this identity saved are opened here (the
    `MixClient` of a later command never saw those SURBs); all else passes through."""

    def __init__(self, inner, identity: dict, sink: list):
        self.inner = inner
        self.identity = identity
        self.sink = sink

    async def send_frame(self, first_hop, frame):
        await self.inner.send_frame(first_hop, frame)

    async def fetch_mailbox(self, gateway, mailbox):
        from fogcore.mixnet.client import Envelope, EnvelopeError, decode_envelope
        from fogcore.packet import Kind, ReplyError, SurbKey, open_reply

        items = await self.inner.fetch_mailbox(gateway, mailbox)
        keep = []
        keys = self.identity["surb_keys"]
        for item in items:
            sid = (item.surb_id or b"").hex()
            if item.kind == Kind.REPLY and sid in keys:
                try:
                    kind, fields = decode_envelope(open_reply(SurbKey.from_bytes(
                        bytes.fromhex(keys[sid])), item.payload))
                except (ReplyError, EnvelopeError, ValueError):
                    continue
                if kind is Envelope.REPLY:
                    del keys[sid]
                    self.sink.append({"kind": "reply", "surb_id": sid,
                                      "text": fields[0].decode("utf-8", "replace")})
                continue
            keep.append(item)
        return keep


def _add_send(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--to", required=True, metavar="ADDRESS",
                        help="recipient address <gateway hex>.<mailbox hex> (fogcore recv "
                             "--address prints one)")
    parser.add_argument("message", help="the message text")
    parser.add_argument("--identity", default="default", help="client identity (default)")
    parser.add_argument("--hops", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds until every fragment must be acknowledged (default 60)")
    _add_data(parser)


async def _drain_inbox(client, identity: dict, sink: list) -> None:
    while True:
        try:
            message = await client.receive(timeout=0.01)
        except TimeoutError:
            break
        entry = {"kind": message.kind, "text": message.data.decode("utf-8", "replace")}
        if message.kind == "message":
            entry["message_id"] = message.message_id.hex()
            if message.reply_surb is not None:
                entry["reply_surb"] = message.reply_surb.to_bytes().hex()
        else:
            entry["surb_id"] = (message.surb_id or b"").hex()
        sink.append(entry)


async def send(data_dir: Path, to: str, text: str, *, identity_name: str = "default",
               hops: int = 4, timeout: float = 60.0, progress=_quiet) -> dict:
    """Send `text` reliably to `to` with a reply SURB; the SURB's key is kept in the
    identity so `recv` can open the reply. TestnetError at once when the recipient's
    gateway is not in the directory, or when `timeout` seconds pass unacknowledged."""
    from fogcore.mixnet.client import Address
    from fogcore.mixnet.testnet import TestnetError

    identity = _load_identity(data_dir, identity_name)
    recipient = Address.parse(to)
    incoming: list = []
    session = _Session(data_dir, hops, identity)
    async with session:
        client = session.client
        if recipient.gateway not in session.gateways:
            raise TestnetError(f"gateway {recipient.gateway.hex()[:16]}… of the address is not "
                               f"a usable gateway of the testnet at {session.api}")
        client.transport = _ReplyOpener(client.transport, identity, incoming)
        progress(f"sending {len(text.encode('utf-8'))} bytes through {hops} hops to "
                 f"gateway {recipient.gateway.hex()[:16]}…")
        try:
            async with asyncio.timeout(timeout):
                result = await client.send(recipient, text.encode("utf-8"), want_reply=True)
        except TimeoutError:
            raise TestnetError(f"not acknowledged within {timeout:g} s") from None
        progress(f"acknowledged: {result.fragments} fragment(s), {result.packets} packet(s)")
        # MixClient keeps the reply SURB's key in memory only: save it for `recv`.
        key = client.surb_key(result.reply_surb_id)
        if key is not None:
            identity["surb_keys"][result.reply_surb_id.hex()] = key.to_bytes().hex()
        await _drain_inbox(client, identity, incoming)
        identity["inbox"] = identity.get("inbox", []) + incoming
        identity["address"] = str(client.address)
    _save_identity(data_dir, identity_name, identity)
    return {"message_id": result.message_id.hex(), "fragments": result.fragments,
            "packets": result.packets, "reply_surb_id": result.reply_surb_id.hex(),
            "from": identity["address"]}


def _run_client(func, args) -> dict:
    from fogcore.mixnet.client import DeliveryFailed
    from fogcore.mixnet.testnet import TestnetError

    if not 2 <= args.hops <= 5 or args.timeout <= 0:
        raise CommandError("need 2 <= --hops <= 5 and --timeout > 0", 2)
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            return runner.run(func())
    except ValueError as exc:  # a malformed address or identity name
        raise CommandError(str(exc), 2) from None
    except (TestnetError, DeliveryFailed) as exc:
        raise CommandError(str(exc)) from None


def _send(args: argparse.Namespace) -> int:
    data = args.data or default_testnet_dir()
    result = _run_client(lambda: send(data, args.to, args.message,
                                      identity_name=args.identity, hops=args.hops,
                                      timeout=args.timeout,
                                      progress=_stderr_progress("send")), args)
    print(json.dumps(result))
    return 0


def _add_recv(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--identity", default="default", help="client identity (default)")
    parser.add_argument("--address", action="store_true",
                        help="print this identity's bare address (what `send --to` takes) "
                             "and exit")
    parser.add_argument("--timeout", "--wait", dest="timeout", type=float, default=5.0,
                        help="seconds to wait for the first message (default 5)")
    parser.add_argument("--reply", metavar="TEXT",
                        help="answer every received message that carries a SURB")
    parser.add_argument("--hops", type=int, default=4)
    _add_data(parser)


async def recv(data_dir: Path, *, identity_name: str = "default", wait: float = 5.0,
               reply: str | None = None, hops: int = 4, address_only: bool = False,
               progress=_quiet) -> dict:
    """Fetch this identity's mailbox: messages and replies (waiting up to `wait` seconds
    for the first); with `reply`, answer each message through its SURB."""
    from fogcore.packet import Surb

    identity = _load_identity(data_dir, identity_name)
    received: list = list(identity.get("inbox", []))
    replies_sent = 0
    session = _Session(data_dir, hops, identity)
    async with session:
        client = session.client
        identity["address"] = str(client.address)
        if not address_only:
            client.transport = _ReplyOpener(client.transport, identity, received)
            progress(f"waiting up to {wait:g} s for messages")
            deadline = time.monotonic() + wait
            while not received and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
                await _drain_inbox(client, identity, received)
            # A little longer: fragments and replies arriving together are shown together.
            await asyncio.sleep(0.2)
            await _drain_inbox(client, identity, received)
            progress(f"received {len(received)}")
            if reply is not None:
                for entry in received:
                    if entry["kind"] == "message" and entry.get("reply_surb"):
                        surb = Surb.from_bytes(bytes.fromhex(entry.pop("reply_surb")))
                        await client.reply(surb, reply.encode("utf-8"))
                        replies_sent += 1
                        progress(f"replied to message {entry['message_id'][:16]}…")
    identity["inbox"] = []
    _save_identity(data_dir, identity_name, identity)
    if address_only:
        return {"address": identity["address"]}
    for entry in received:
        entry.pop("reply_surb", None)
    return {"address": identity["address"], "received": received,
            "replies_sent": replies_sent}


def _recv(args: argparse.Namespace) -> int:
    data = args.data or default_testnet_dir()
    quiet = args.address  # the bare address alone: `$(fogcore recv --address)` just works
    result = _run_client(lambda: recv(data, identity_name=args.identity, wait=args.timeout,
                                      reply=args.reply, hops=args.hops,
                                      address_only=args.address,
                                      progress=_quiet if quiet else _stderr_progress("recv")),
                         args)
    print(result["address"] if args.address else json.dumps(result))
    return 0


COMMANDS = {
    "up": ("run a local testnet: API, panel, directory, mix nodes and gateways", _add_up, _up),
    "ping": ("loop messages through the running testnet; delivery, loss and latency",
             _add_ping, _ping),
    "send": ("send a message (with a reply SURB) through the running testnet", _add_send,
             _send),
    "recv": ("receive messages and replies; answer with --reply", _add_recv, _recv),
}
