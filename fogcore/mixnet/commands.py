"""`fogcore node --config FILE`: run one mix node until SIGINT, SIGTERM or SIGHUP, then
leave the network gracefully (docs/node.md §16): SIGTERM or SIGHUP starts the leave with
its grace period; a second one, or SIGINT, cuts the grace short (the packets already
accepted are still sent at their committed delays). No setting is reloaded in place: the
keys, listener and delays are bound to the node's identity and epoch (docs/node.md §11).
`--check-config` validates the configuration and prints it without starting a node."""

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import signal
import sys
import warnings

from fogcore.cli import LOG_LEVELS, CommandError

__all__ = ["COMMANDS", "check_config", "run_node"]

#: signals that make the node leave; the first starts the grace, a later one ends it
LEAVE_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE",
                        help="TOML file with a [node] table (FOG_NODE_* variables "
                             "override it)")
    parser.add_argument("--check-config", action="store_true",
                        help="validate the configuration and the key file, print the "
                             "effective settings as JSON and exit (0: valid, 2: not)")
    parser.add_argument("--log-level", default="info", choices=LOG_LEVELS)


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
        # The first SIGTERM/SIGHUP starts the leave; a second one, or SIGINT, ends its grace.
        if stop.is_set() or sig == signal.SIGINT:
            node.cut_grace()
        stop.set()

    for sig in (signal.SIGINT, *LEAVE_SIGNALS):
        loop.add_signal_handler(sig, on_signal, sig)
    if ready is not None:
        ready(node)
    try:
        await stop.wait()
        await node.leave()  # the stats reporter keeps reporting while the node drains
    finally:
        for sig in (signal.SIGINT, *LEAVE_SIGNALS):
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


def check_config(config) -> list[str]:
    """Problems a node with `config` would meet at start-up that `NodeConfig.validate`
    cannot see (an unreadable key file, a key directory it cannot write), as lines."""
    problems = []
    path = config.keys_file
    if path and os.path.exists(path):
        try:
            with open(path, encoding="ascii") as fh:
                keys = json.load(fh)
            bytes.fromhex(keys["identity_seed"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            problems.append(f"keys_file {path}: not a readable key file ({exc})")
    elif path:
        folder = os.path.dirname(os.path.abspath(path))
        if not os.access(folder, os.W_OK | os.X_OK):
            problems.append(f"keys_file {path}: cannot create it in {folder}")
    return problems


def _load(args: argparse.Namespace):
    """The configuration, with each deprecated variable reported as one line on stderr."""
    from fogcore.mixnet.config import ConfigError, load_config

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", FutureWarning)
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            raise CommandError(str(exc), 2) from None
        except OSError as exc:
            raise CommandError(f"cannot read the config file {args.config}: "
                               f"{exc.strerror or exc}", 2) from None
    for warning in caught:
        print(f"fogcore node: warning: {warning.message}", file=sys.stderr, flush=True)
    return config


def _run(args: argparse.Namespace) -> int:
    from fogcore.mixnet.keystore import KeyStoreError

    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = _load(args)
    if args.check_config:
        problems = check_config(config)
        if problems:
            raise CommandError("; ".join(problems), 2)
        shown = dataclasses.asdict(config)
        if shown["directory_key"]:
            shown["directory_key"] = "***"  # a secret: say it is set, never print it
        print(json.dumps({"event": "config_ok", "config": shown}, sort_keys=True),
              flush=True)
        return 0

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
        raise CommandError(str(exc), 2) from None
    except OSError as exc:
        raise CommandError(f"cannot listen on {config.listen_host}:{config.listen_port}: "
                           f"{exc.strerror or exc}") from None
    print(json.dumps({"event": "stopped", "stats": stats}), flush=True)
    return 0


COMMANDS = {
    "node": ("run one mix node (or gateway) until SIGINT/SIGTERM/SIGHUP", _add_arguments,
             "fogcore.mixnet.commands:_run"),
}
