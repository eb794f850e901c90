"""The two processes of the multi-host test (test_netns.py), each run inside a network
namespace with `ip netns exec`:

`supervise`: the testnet supervisor (API, directory, embedded store) listening on its
namespace's address; it starts every node in a namespace of its own through
`TestnetOptions.placement`, until SIGINT or SIGTERM.

`clients`: two clients on a host of their own, refreshing their topology from the
directory. Phase 1 sends messages and waits for all of them; phase 2 starts sending
reliable messages at a steady pace and prints `{"event": "sending"}`; the test then cuts a
host off and writes `cut`: the clients watch the directory until every node of that host
(`--watch-host`) is listed `unreachable` and print `{"event": "unreachable", "after_s": s}`;
the test restores the link and writes `restored`: they watch until those nodes are `up`
again (`{"event": "back", ...}`), wait for every message to end, delivered or failed, and
print `{"event": "done", ...}` with the counts and both clients' counters.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from pathlib import Path


def _print(record: dict) -> None:
    print(json.dumps(record), flush=True)


async def supervise(args: argparse.Namespace) -> int:
    from fogcore.mixnet.testnet import Testnet, TestnetOptions

    namespaces = args.namespaces.split(",")
    hosts = args.hosts.split(",")

    def placement(index: int):
        # One node per host: its command runs in that host's namespace, on its address.
        return ["ip", "netns", "exec", namespaces[index]], hosts[index]

    options = TestnetOptions(data_dir=Path(args.data), nodes=len(hosts) - args.gateways,
                             gateways=args.gateways, format=args.format,
                             api_host=args.api_host, api_port=args.api_port,
                             mean_delay_ms=5.0, max_delay_ms=100.0, placement=placement,
                             start_timeout_s=40.0)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    testnet = Testnet(options)
    try:
        await testnet.start()
        _print({"event": "up", "api": testnet.api_url})
        await stop.wait()
    finally:
        await testnet.stop()
    return 0


async def clients(args: argparse.Namespace) -> int:
    from fogcore.mixnet.client import ClientConfig, MixClient
    from fogcore.mixnet.directory_client import DirectoryClient
    from fogcore.mixnet.resolver import DirectoryResolver
    from fogcore.mixnet.testnet import read_state
    from fogcore.mixnet.topology import GATEWAY, Topology
    from fogcore.mixnet.transport import TcpTransport

    state = read_state(Path(args.data))
    api, fmt = state["api"], state["format"]
    directory = DirectoryClient(api)
    resolver = DirectoryResolver(api)
    transport = TcpTransport(resolver)
    topologies = [Topology(fmt), Topology(fmt)]
    for t in topologies:
        await directory.refresh(t)
    gateway = topologies[0].usable(GATEWAY)[0].node_id
    # Round trips here take well under a second: cap the backoff so that eight attempts
    # fit the test's 45-second window even for a fragment unlucky eight times.
    config = ClientConfig(format=fmt, hops=args.hops, poll_interval=0.02, ack_timeout=1.0,
                          max_timeout=4.0, max_attempts=8, down_for=30.0)
    a = MixClient(topologies[0], transport, gateway, config=config, directory=directory)
    b = MixClient(topologies[1], transport, gateway, config=config, directory=directory)
    await a.start()
    await b.start()
    try:
        async def receive_all(expected: set[bytes]) -> None:
            got: set[bytes] = set()
            while got != expected:
                got.add((await b.receive(timeout=15)).data)

        first = {b"phase 1 message %d" % i for i in range(args.messages)}
        await asyncio.gather(*(a.send(b.address, m) for m in sorted(first)))
        await receive_all(first)
        _print({"event": "phase1", "delivered": len(first)})

        second = [b"phase 2 message %d" % i for i in range(args.second)]

        async def one(i: int):
            await asyncio.sleep(args.spacing * i)
            return await a.send(b.address, second[i])

        sending = [asyncio.ensure_future(one(i)) for i in range(len(second))]
        await asyncio.sleep(0.3)
        _print({"event": "sending"})
        # The test cuts a host off now and answers with one line.
        async with asyncio.timeout(20):
            await asyncio.to_thread(sys.stdin.readline)
        _print({"event": "unreachable",
                **await _watch(directory, args.watch_host, "unreachable", args.watch_s)})
        async with asyncio.timeout(60):
            await asyncio.to_thread(sys.stdin.readline)
        _print({"event": "back", **await _watch(directory, args.watch_host, "up",
                                                args.watch_s)})
        async with asyncio.timeout(90):
            results = await asyncio.gather(*sending, return_exceptions=True)
        delivered: set[bytes] = set()
        with contextlib.suppress(TimeoutError):
            # Whatever was acknowledged is in the mailbox: take it all.
            async with asyncio.timeout(15):
                while len(delivered) < len(second):
                    delivered.add((await b.receive(timeout=15)).data)
        failures = [repr(r) for r in results if isinstance(r, BaseException)]
        _print({"event": "done", "phase1": len(first), "phase2": len(second),
                "delivered": len(delivered), "failures": failures[:5],
                "stats": dict(a.stats), "receiver": dict(b.stats)})
    finally:
        await a.stop()
        await b.stop()
        await transport.close()
        await resolver.aclose()
        await directory.aclose()
    return 0


async def _watch(directory, host: str, want: str, bound_s: float) -> dict:
    """Poll the directory (every state listed) until every node on `host` is in state
    `want`; how long that took, or `None` after `bound_s`."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while loop.time() - started < bound_s:
        with contextlib.suppress(Exception):
            nodes = await directory.list_nodes(state="all")
            mine = [n for n in nodes if n["address"].rsplit(":", 1)[0] == host]
            if mine and all(n["state"] == want for n in mine):
                return {"after_s": round(loop.time() - started, 2), "nodes": len(mine)}
        await asyncio.sleep(0.25)
    return {"after_s": None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="role", required=True)
    s = sub.add_parser("supervise")
    s.add_argument("--data", required=True)
    s.add_argument("--format", default="sphinx")
    s.add_argument("--api-host", required=True)
    s.add_argument("--api-port", type=int, default=8000)
    s.add_argument("--hosts", required=True, help="node addresses, comma separated")
    s.add_argument("--namespaces", required=True, help="node namespaces, comma separated")
    s.add_argument("--gateways", type=int, default=1)
    c = sub.add_parser("clients")
    c.add_argument("--data", required=True)
    c.add_argument("--hops", type=int, default=4)
    c.add_argument("--messages", type=int, default=30)
    c.add_argument("--second", type=int, default=120, help="messages of phase 2")
    c.add_argument("--spacing", type=float, default=0.1)
    c.add_argument("--watch-host", required=True, help="the address of the host cut off")
    c.add_argument("--watch-s", type=float, default=20.0, help="bound of each watch")
    for p in (s, c):
        p.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    args = parser.parse_args()
    factory = asyncio.new_event_loop
    if args.loop == "uvloop":
        import uvloop

        factory = uvloop.new_event_loop
    role = supervise if args.role == "supervise" else clients
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(role(args))


if __name__ == "__main__":
    sys.exit(main())
