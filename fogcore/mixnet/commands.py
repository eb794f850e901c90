"""`fogcore node --config FILE`: run one mix node until SIGINT or SIGTERM, then leave the
network gracefully (docs/node.md §16): SIGTERM starts the leave with its grace period; a
second SIGTERM, or SIGINT, cuts the grace short (the packets already accepted are still
sent at their committed delays)."""

import argparse
import asyncio
import json
import logging
import signal
import sys

__all__ = ["COMMANDS", "run_node"]


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE",
                        help="TOML file with a [node] table (FOGCORE_NODE_* variables "
                             "override it)")
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"])


async def run_node(config, ready=None) -> dict:
    """Run a node with `config` until SIGINT/SIGTERM; return its final counters.
    `ready(node)` is called once it listens."""
    from fogcore.mixnet.node import MixNode

    resolver = None
    if config.directory_url:
        from fogcore.mixnet.links import StaticResolver
        from fogcore.mixnet.resolver import DirectoryResolver

        resolver = DirectoryResolver(config.directory_url,
                                     fallback=StaticResolver(config.peer_table()))
    node = MixNode(config, resolver=resolver)
    await node.start()
    extras = await _start_services(node, config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(sig: int) -> None:
        # The first SIGTERM starts the leave; a second one, or SIGINT, ends its grace.
        if stop.is_set() or sig == signal.SIGINT:
            node.cut_grace()
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    if ready is not None:
        ready(node)
    try:
        await stop.wait()
        await node.leave()  # the stats reporter keeps reporting while the node drains
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        reporter, publisher, gateway = extras
        if reporter is not None:
            await reporter.stop()
        await node.stop()
        # After the drain: the last epoch's proof and the last deliveries are still served.
        if publisher is not None:
            await publisher.stop()
        if gateway is not None:
            await gateway.stop()
        if resolver is not None:
            await resolver.aclose()
    return node.stats()


async def _start_services(node, config):
    """The optional services around a node: stats lines, directory publisher, a gateway's
    mailbox fetch service (docs/testnet.md)."""
    reporter = publisher = gateway = None
    host, port = node.address
    if config.layer == "gateway":
        from fogcore.mixnet.gateway import GatewayService

        gateway = GatewayService(node.mailboxes, config.listen_host,
                                 config.gateway_port or port + 1)
        await gateway.start()
        node.gateway_address = gateway.address
    if config.directory_url and config.directory_key:
        from fogcore.mixnet.publisher import Publisher

        advertised = config.advertise_host or host
        if ":" in advertised:
            advertised = f"[{advertised}]"
        publisher = Publisher(node, config.directory_url, config.directory_key,
                              address=f"{advertised}:{port}")
        await publisher.start()
    if config.stats_interval_s:
        from fogcore.mixnet.node_stats import StatsReporter

        reporter = StatsReporter(node, config.stats_interval_s)
        reporter.start()
    return reporter, publisher, gateway


def _loop_factory():
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def _run(args: argparse.Namespace) -> int:
    from fogcore.mixnet.config import ConfigError, load_config
    from fogcore.mixnet.keystore import KeyStoreError

    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(args.config)
    except (ConfigError, OSError) as exc:
        print(f"fogcore node: {exc}", file=sys.stderr)
        return 2

    def ready(node):
        host, port = node.address
        print(json.dumps({"event": "listening", "node_id": node.node_id.hex(),
                          "host": host, "port": port, "layer": config.layer,
                          "format": config.format,
                          "routing_key": node.keys.routing_public.hex(),
                          "gateway_port": (getattr(node, "gateway_address", None)
                                           or (None, None))[1]}), flush=True)

    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            stats = runner.run(run_node(config, ready))
    except KeyStoreError as exc:
        print(f"fogcore node: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"fogcore node: cannot listen: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"event": "stopped", "stats": stats}), flush=True)
    return 0


COMMANDS = {
    "node": ("run one mix node (or gateway) until SIGINT/SIGTERM", _add_arguments,
             "fogcore.mixnet.commands:_run"),
}
