"""The `faults` phase of `fogcore bench node`: a local testnet under a steady load of
reliable messages while one node is stopped and one is cut off (docs/node.md §15).

The testnet has two nodes per layer and one gateway on loopback, started by the same
supervisor as `fogcore up` (its directory probes every node). Several clients send
single-fragment reliable messages at a fixed pace to their own mailboxes. Then:

1. **stop**: a mix node gets SIGTERM and leaves by the leave protocol (docs/node.md);
2. **cut**: an entry node gets SIGSTOP. Its connections stay open and the kernel still
   accepts bytes, but nothing is read, forwarded or answered — what senders see of a host
   whose link was cut, short of the kernel's own timeouts. It gets SIGCONT later.

Every fragment transmission is observed (route, send time, outcome). Reported per fault:
the fragments that went through the node and were lost, the reroute time of each (from
the fault to the acknowledgement of its transmission on a route avoiding the node:
p50/p99), and how long clients kept choosing the node. Over the run: messages sent,
acknowledged and received (delivered %), transmissions by outcome — every one ends
acknowledged or counted under a reason, so `unaccounted` must be 0 — and the nodes' own
drop counters by reason.
"""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
import time
from collections import Counter
from pathlib import Path

__all__ = ["run_faults"]

CLIENTS = 4
#: seconds between two messages of one client
SPACING_S = 0.1


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))], 3)


class _Observer:
    """Collects every fragment transmission of every client."""

    def __init__(self):
        #: (client, message_id, index) -> [(node_ids, sent_at, outcome, ended_at)]
        self.fragments: dict[tuple, list] = {}
        self.outcomes: Counter[str] = Counter()

    def for_client(self, n: int):
        def observe(message_id, index, node_ids, sent_at, outcome, ended_at):
            self.fragments.setdefault((n, message_id, index), []).append(
                (frozenset(node_ids), sent_at, outcome, ended_at))
            self.outcomes[outcome] += 1
        return observe

    def fault_figures(self, node: bytes, at: float, until: float) -> dict:
        """For the fault of `node` from `at` to `until` (monotonic; `until` is when it
        answered again, or the end of the run): the fragments that went through it and
        were lost, each one's reroute time (from the fault to its first acknowledgement),
        and the last time a client still sent through it while it was faulty."""
        reroutes, failed, lost = [], 0, 0
        last_choice = None
        for transmissions in self.fragments.values():
            # Transmissions through the node that were under way during the fault (an
            # ack timing out after the node answered again is no loss to its fault).
            through = [t for t in transmissions
                       if node in t[0] and t[3] >= at and t[1] < until]
            for t in through:
                if t[1] >= at:
                    last_choice = max(last_choice or 0.0, t[1] - at)
            if not any(t[2] != "acked" for t in through):
                continue
            lost += 1
            acked = [t[3] for t in transmissions if t[2] == "acked" and t[3] >= at]
            if acked:
                reroutes.append(min(acked) - at)
            else:
                failed += 1
        return {"fragments_lost": lost, "fragments_failed": failed,
                "reroute_p50_s": _percentile(reroutes, 0.5),
                "reroute_p99_s": _percentile(reroutes, 0.99),
                "reroute_max_s": round(max(reroutes), 3) if reroutes else None,
                "chosen_until_s": None if last_choice is None else round(last_choice, 3)}


async def _faults(fmt: str, quick: bool, scale: float, log) -> dict:
    from fogcore.mixnet.client import ClientConfig, MixClient
    from fogcore.mixnet.directory_client import DirectoryClient
    from fogcore.mixnet.resolver import DirectoryResolver
    from fogcore.mixnet.testnet import Testnet, TestnetOptions
    from fogcore.mixnet.topology import GATEWAY, Topology
    from fogcore.mixnet.transport import TcpTransport

    warm_s, fault_s, after_s = (3.0, 10.0, 5.0) if quick else (10.0, 30.0, 15.0)
    if quick:
        # Tests shorten the windows; a cut still needs seconds to be seen and routed around.
        k = max(0.5, min(1.0, scale))
        warm_s, fault_s, after_s = warm_s * k, fault_s * k, after_s * k
    loop = asyncio.get_running_loop()
    with tempfile.TemporaryDirectory(prefix="fogcore-faults-") as tmp:
        options = TestnetOptions(data_dir=Path(tmp), nodes=6, gateways=1, format=fmt,
                                 api_port=0, mean_delay_ms=10.0, max_delay_ms=100.0,
                                 start_timeout_s=60.0)
        testnet = Testnet(options)
        await testnet.start()
        closers = []
        try:
            directory = DirectoryClient(testnet.api_url)
            resolver = DirectoryResolver(testnet.api_url)
            transport = TcpTransport(resolver)
            closers += [directory.aclose, resolver.aclose, transport.close]
            config = ClientConfig(format=fmt, poll_interval=0.02, ack_timeout=1.0,
                                  max_timeout=4.0, max_attempts=8)
            observer = _Observer()
            clients = []
            for n in range(CLIENTS):
                topology = Topology(fmt)
                await directory.refresh(topology)
                gateway = topology.usable(GATEWAY)[0].node_id
                client = MixClient(topology, transport, gateway, config=config,
                                   directory=directory)
                client.transmission_observer = observer.for_client(n)
                await client.start()
                closers.insert(0, client.stop)
                clients.append(client)
            received: Counter[int] = Counter()
            sending = asyncio.Event()
            sending.set()
            results: list = []

            async def sender(n: int, client) -> None:
                i = 0
                while sending.is_set():
                    body = b"faults %d %d" % (n, i)
                    results.append(asyncio.ensure_future(client.send(client.address, body)))
                    i += 1
                    await asyncio.sleep(SPACING_S)

            async def receiver(n: int, client) -> None:
                while True:
                    await client.receive()
                    received[n] += 1

            senders = [asyncio.ensure_future(sender(n, c)) for n, c in enumerate(clients)]
            receivers = [asyncio.ensure_future(receiver(n, c)) for n, c in enumerate(clients)]
            handles = list(testnet.nodes.values())
            victim_stop = next(h for h in handles if h.layer == "mix")
            victim_cut = next(h for h in handles if h.layer == "entry")
            await asyncio.sleep(warm_s)
            log("faults: stopping a mix node (SIGTERM)")
            stop_at = time.monotonic()
            victim_stop.process.send_signal(signal.SIGTERM)
            await asyncio.sleep(fault_s)
            log("faults: cutting an entry node off (SIGSTOP)")
            cut_at = time.monotonic()
            os.kill(victim_cut.process.pid, signal.SIGSTOP)
            try:
                await asyncio.sleep(fault_s)
            finally:
                os.kill(victim_cut.process.pid, signal.SIGCONT)
            resumed_at = time.monotonic()
            log("faults: the entry node answers again (SIGCONT)")
            await asyncio.sleep(after_s)
            sending.clear()
            await asyncio.gather(*senders)
            outcomes = await asyncio.wait_for(
                asyncio.gather(*results, return_exceptions=True), 120)
            # Acknowledged messages are in their mailboxes: let the receivers take them.
            acked = sum(1 for r in outcomes if not isinstance(r, BaseException))
            deadline = loop.time() + 10
            while sum(received.values()) < acked and loop.time() < deadline:
                await asyncio.sleep(0.1)
            for task in receivers:
                task.cancel()
            await asyncio.gather(*receivers, return_exceptions=True)
            stats = Counter()
            for client in clients:
                stats.update(client.stats)
            drops: Counter[str] = Counter()
            for handle in handles:
                last = handle.series.last or {}
                for key in ("link_drops", "mailbox_drops"):
                    drops.update({k: v for k, v in (last.get(key) or {}).items()
                                  if isinstance(v, int)})
            unacked = sum(v for k, v in stats.items() if k.startswith("unacked_"))
            sent = len(outcomes)
            delivered = sum(received.values())
            return {
                "format": fmt,
                "clients": CLIENTS,
                "messages_sent": sent,
                "messages_acked": acked,
                "messages_delivered": delivered,
                "messages_failed": sent - acked,
                "delivered_pct": round(100.0 * delivered / sent, 2) if sent else None,
                "transmissions": stats["transmissions"],
                "transmissions_acked": stats["transmissions_acked"],
                "unacked": {k[len("unacked_"):]: v for k, v in sorted(stats.items())
                            if k.startswith("unacked_") and v},
                "unaccounted": stats["transmissions"] - stats["transmissions_acked"] - unacked,
                "no_route": stats["no_route"],
                "node_drops": dict(sorted(drops.items())),
                "stop": observer.fault_figures(bytes.fromhex(victim_stop.node_id), stop_at,
                                               time.monotonic()),
                "cut": observer.fault_figures(bytes.fromhex(victim_cut.node_id), cut_at,
                                              resumed_at),
                "seconds": round(warm_s + 2 * fault_s + after_s, 1),
            }
        finally:
            for close in closers:
                try:
                    await close()
                except Exception:  # a closing client must not hide the run's result
                    pass
            await testnet.stop()


def run_faults(fmt: str, quick: bool, log=print, scale: float = 1.0) -> dict:
    """The faults phase for packet format `fmt`, on its own event loop; `scale` (at least
    0.5) shortens the windows of a quick run."""
    from fogcore.mixnet.commands import _loop_factory

    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        figures = runner.run(_faults(fmt, quick, scale, log))
    stop, cut = figures["stop"], figures["cut"]
    worst = [v for v in (stop["reroute_p99_s"], cut["reroute_p99_s"]) if v is not None]
    figures["reroute_p99_s"] = max(worst) if worst else None
    figures["targets"] = {
        "reroute_p99_le_5s": figures["reroute_p99_s"] is None or figures["reroute_p99_s"] <= 5,
        "delivered_ge_99pct": (figures["delivered_pct"] or 0) >= 99.0,
        "unaccounted_zero": figures["unaccounted"] == 0,
    }
    return figures


if __name__ == "__main__":  # a quick look: python -m fogcore.bench.faults
    import json

    print(json.dumps(run_faults("sphinx", True), indent=2))
