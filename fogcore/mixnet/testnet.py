"""The local testnet supervisor behind `fogcore up` (docs/testnet.md).

One process runs the API (with the embedded SQLite store of the data directory) in its own
event loop and starts every mix node and gateway as a `fogcore node --config FILE`
subprocess with its own config file and keys. Each node registers its signed descriptor
and publishes its VRF epoch proofs through the API with an operator key the supervisor
creates for itself, and reports its counters as JSON lines on its standard output, which
the supervisor turns into the live figures of `GET /api/betanet/status`.

A node's state comes from the directory, whose prober learns within seconds whether the
node answers on the network (`up`, `unreachable`, `draining`, `unknown` before its first
probe), and is `down` once its process exited. A node that exits on its own is reported
(logged, shown as `down`, removed from the directory), never restarted silently. `stop()` stops every node with SIGTERM (they drain
every accepted packet), then the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from fogcore.mixnet.node_stats import NodeSeries

__all__ = ["STATE_FILE", "NodeHandle", "Testnet", "FormatMismatch", "TestnetControl", "TestnetError",
           "TestnetOptions", "layer_sizes", "read_state"]

log = logging.getLogger("fogcore.testnet")

STATE_FILE = "testnet.json"
LAYER_NAMES = ("entry", "mix", "exit", "gateway")
#: how often the supervisor reads the directory's node states
DIRECTORY_POLL_S = 1.0
_NODE_FIELDS = ("packets_in_per_s", "packets_out_per_s", "drops_per_s", "queue_depth",
                "mean_delay_ms", "latency_p50_ms", "latency_p99_ms")


class TestnetError(RuntimeError):
    """The testnet could not start (or a node could not be deployed)."""


class FormatMismatch(TestnetError):
    """A node of another packet format than the testnet's was asked for: clients build
    packets of the testnet's format only, so such a node would never get traffic."""


class TestnetControl(Protocol):
    """What the API's `/api/betanet` routes use (set as `app.state.betanet`)."""

    def status(self) -> dict:
        """The `GET /api/betanet/status` document."""

    def node_view(self, node_id: str) -> dict | None:
        """One node object plus `history`, or None when unknown."""

    async def deploy(self, layer: str, format: str) -> dict:
        """Start one more node and return its node object."""

    async def remove(self, node_id: str) -> bool:
        """Stop a node and remove it from the directory; False when unknown."""


def layer_sizes(nodes: int) -> tuple[int, int, int]:
    """Entry, mix and exit counts for `nodes` mix nodes (the extra ones go to the middle)."""
    if nodes < 3:
        raise ValueError("a testnet needs at least 3 mix nodes (one per layer)")
    base, extra = divmod(nodes, 3)
    return base + (extra > 1), base + (extra > 0), base


@dataclass
class TestnetOptions:
    """How `Testnet` lays out and runs the network."""

    data_dir: Path
    nodes: int = 9
    gateways: int = 2
    format: str = "sphinx"
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    node_host: str = "127.0.0.1"
    mean_delay_ms: float = 10.0
    max_delay_ms: float = 500.0
    delay_epoch_s: int = 10
    stats_interval_s: float = 1.0
    history_s: float = 300.0
    #: extra `[node]` settings for every node
    node_settings: dict = field(default_factory=dict)
    #: per node index: (command prefix, listen host) — e.g. a network namespace
    placement: Callable[[int], tuple[Sequence[str], str]] | None = None
    start_timeout_s: float = 30.0
    #: called with one short line per start-up step (`fogcore up` prints them)
    progress: Callable[[str], None] | None = None


@dataclass
class NodeHandle:
    """One node subprocess as the supervisor sees it."""

    index: int
    layer: str
    format: str
    workdir: Path
    process: asyncio.subprocess.Process | None = None
    node_id: str = ""
    host: str = ""
    port: int = 0
    gateway_port: int | None = None
    state: str = "starting"
    exit_code: int | None = None
    series: NodeSeries = field(default_factory=NodeSeries)
    reader: asyncio.Task | None = None
    stopping: bool = False
    #: The node's delay parameters in µs, as the node derives them from its config.
    delay_mean_us: int = 0
    delay_max_us: int = 0
    #: the directory's state of the node and since when (wall time)
    directory_state: str = "unknown"
    state_since: float = 0.0

    @property
    def address(self) -> str:
        """host:port of the packet listener."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def shown_state(self) -> str:
        """`down` once the process exited, else the directory's state of the node."""
        return self.directory_state if self.state == "up" else "down"

    def view(self) -> dict:
        """The node object of the betanet API."""
        running = self.state == "up"
        cur = self.series.current if running else NodeSeries._zero()
        out = {"node_id": self.node_id, "layer": self.layer, "format": self.format,
               "address": self.address, "state": self.shown_state,
               "state_since": self.state_since}
        for name in _NODE_FIELDS:
            out[name] = cur[name]
        out["connections"] = self.series.connections if running else 0
        return out

    def detail(self) -> dict:
        """The node object plus history, delay parameters and, when the node reports them,
        its connection refusals and the states of its links to next hops."""
        out = {**self.view(), "history": list(self.series.history),
               "delay_mean_us": self.delay_mean_us, "delay_max_us": self.delay_max_us}
        last = self.series.last or {}
        refusals = last.get("refusals")
        if isinstance(refusals, dict):
            out["refusals"] = {str(k): int(v) for k, v in refusals.items()
                               if isinstance(v, int) and not isinstance(v, bool)}
        links = last.get("link_states")
        if isinstance(links, dict):
            out["link_states"] = {str(k): str(v) for k, v in links.items()}
        return out


def _free_port_pair(host: str) -> int:
    """A port P with P and P + 1 free on `host` (a gateway's packet and fetch ports)."""
    for _ in range(200):
        with socket.socket() as a:
            a.bind((host, 0))
            port = a.getsockname()[1]
            if port >= 65535:
                continue
            with socket.socket() as b:
                try:
                    b.bind((host, port + 1))
                except OSError:
                    continue
            return port
    raise TestnetError("no free pair of ports")


def _die_with_parent() -> None:
    # Runs in the child before exec: a node outlives no crashed supervisor (Linux only).
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def database_url(data_dir: Path) -> str:
    """The URL of the store a testnet keeps in `data_dir`: its API's accounts live there."""
    return "sqlite:///" + str((Path(data_dir) / "testnet.db").resolve()).lstrip("/")


def running_database_url(data_dir: Path) -> str | None:
    """`database_url(data_dir)` while a testnet runs with `data_dir`, else None."""
    try:
        pid = read_state(data_dir).get("pid")
    except TestnetError:
        return None
    return database_url(data_dir) if _alive(pid) else None


def read_state(data_dir: Path) -> dict:
    """The state file a running `fogcore up` keeps in `data_dir`; TestnetError when none."""
    path = Path(data_dir) / STATE_FILE
    try:
        with open(path, encoding="utf-8") as fh:
            state = json.load(fh)
    except FileNotFoundError:
        raise TestnetError(f"no testnet is running with data directory {data_dir} "
                           "(start one with `fogcore up`)") from None
    except (OSError, ValueError) as exc:
        raise TestnetError(f"{path}: {exc}") from None
    return state


class _Server:
    """uvicorn's server without its own signal handling: the supervisor owns the signals."""

    def __init__(self, app, sock: socket.socket):
        import uvicorn

        class Quiet(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self):
                yield

        from fogcore.api.server import server_options

        # Served as `fogcore serve` serves it (head limits, no X-Forwarded-For rewriting);
        # a bounded graceful shutdown: a client holding a request open cannot stop `stop()`.
        config = uvicorn.Config(app, loop="none", lifespan="on", timeout_graceful_shutdown=10,
                                **server_options(app))
        self.server = Quiet(config)
        self.sock = sock
        self.task: asyncio.Task | None = None

    async def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.server.serve([self.sock]))
        while not self.server.started:
            if self.task.done():
                self.task.result()
                raise TestnetError("the API did not start")
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        self.server.should_exit = True
        if self.task is not None:
            await self.task


class Testnet:
    """A local testnet: API, directory and nodes. `await start()`, then `await stop()`."""

    def __init__(self, options: TestnetOptions):
        self.options = options
        self.data_dir = Path(options.data_dir)
        self.nodes: dict[str, NodeHandle] = {}
        self.store = None
        self.api_url = ""
        self.login: dict = {}
        self._handles: list[NodeHandle] = []
        self._server: _Server | None = None
        self._key_id: int | None = None
        self._api_key = ""
        self._next_index = 0
        self._stopping = False
        self._watcher: asyncio.Task | None = None
        self.failed = asyncio.Event()

    # -- life cycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Bring up the API and every node; TestnetError (after cleaning up) on failure.
        Cancelled, it stops what it started within seconds: a node that never carried
        traffic has nothing to drain, so its grace is cut (SIGINT, docs/node.md §16)."""
        try:
            await self._start()
        except BaseException:
            await self.stop(cut_grace=True)
            raise

    def _progress(self, line: str) -> None:
        if self.options.progress is not None:
            self.options.progress(line)

    async def _start(self) -> None:
        from fogcore.api import create_app
        from fogcore.api.settings import Settings
        from fogcore.store import open_store

        opts = self.options
        self.data_dir.mkdir(parents=True, exist_ok=True)
        state = self.data_dir / STATE_FILE
        if state.exists():
            old = read_state(self.data_dir)
            if _alive(old.get("pid")):
                raise TestnetError(f"a testnet already runs with this data directory "
                                   f"(pid {old['pid']}, {old.get('api')})")
        nodes_dir = self.data_dir / "nodes"
        shutil.rmtree(nodes_dir, ignore_errors=True)
        nodes_dir.mkdir()
        url = database_url(self.data_dir)
        self._progress(f"store {self.data_dir / 'testnet.db'}")
        self.store = await open_store(url)
        # Nodes of an earlier run are gone: their entries would only send clients astray.
        for node in await self.store.directory.list(include_expired=True, limit=1000):
            await self.store.directory.delete(node.node_id)
        await self._credentials()
        sock = socket.socket(socket.AF_INET6 if ":" in opts.api_host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((opts.api_host, opts.api_port))
        except OSError as exc:
            sock.close()
            raise TestnetError(f"cannot listen on {opts.api_host}:{opts.api_port}: {exc}") \
                from None
        sock.listen(1024)
        port = sock.getsockname()[1]
        host = f"[{opts.api_host}]" if ":" in opts.api_host else opts.api_host
        self.api_url = f"http://{host}:{port}"
        settings = Settings.from_env(host=opts.api_host, port=port, database_url=url,
                                     bench_dir=str(self.data_dir / "bench"),
                                     access_log=False)
        app = create_app(settings, store=self.store)
        app.state.betanet = self
        self._server = _Server(app, sock)
        await self._server.start()
        self._progress(f"API listening at {self.api_url}")
        self._watcher = asyncio.get_running_loop().create_task(self._watch_directory())
        entry, mix, exit_ = layer_sizes(opts.nodes)
        layers = ["entry"] * entry + ["mix"] * mix + ["exit"] * exit_
        layers += ["gateway"] * opts.gateways
        self._progress(f"starting {len(layers)} nodes ({entry} entry, {mix} mix, {exit_} exit, "
                       f"{opts.gateways} gateway)")
        launches = [asyncio.ensure_future(self._launch(layer, opts.format))
                    for layer in layers]
        try:
            for done, launch in enumerate(asyncio.as_completed(launches), 1):
                handle = await launch
                self._progress(f"[{done}/{len(layers)}] {handle.layer} node "
                               f"{handle.node_id[:16]} up at {handle.address}")
        finally:
            # One launch failed or the start was cancelled: end the others before stop().
            for launch in launches:
                launch.cancel()
            await asyncio.gather(*launches, return_exceptions=True)
        self._write_state()

    async def _credentials(self) -> None:
        from fogcore.api.auth import _hash_password_sync, new_api_key, token_hash
        from fogcore.store import NotFound

        store = self.store
        env_password = os.environ.get("FOG_ADMIN_PASSWORD")
        admin_name = os.environ.get("FOG_ADMIN_USER") or "admin"
        if env_password:
            self.login = {"username": admin_name, "password_from": "FOG_ADMIN_PASSWORD"}
        elif await store.users.count(role="admin") == 0:
            password = secrets.token_urlsafe(12)
            hashed = await asyncio.to_thread(_hash_password_sync, password)
            async with store.transaction():
                user = await store.users.create(admin_name, hashed, "admin")
                await store.audit.record("testnet", "user.create", target=str(user.id),
                                         detail={"source": "fogcore up"})
            self.login = {"username": admin_name, "password": password}
        else:
            self.login = {"username": admin_name, "password_from": "existing account"}
        try:
            owner = await store.users.get_by_username("testnet-supervisor")
        except NotFound:
            # An operator account nobody logs in to: it owns the supervisor's API keys.
            hashed = await asyncio.to_thread(_hash_password_sync, secrets.token_hex(32))
            owner = await store.users.create("testnet-supervisor", hashed, "operator")
        for old in await store.api_keys.list(include_inactive=False):
            if old.user_id == owner.id:
                await store.api_keys.revoke(old.id)
        secret, prefix = new_api_key()
        key = await store.api_keys.create(token_hash(secret), "testnet supervisor", owner.id,
                                          "operator", prefix=prefix)
        self._api_key, self._key_id = secret, key.id

    def _write_state(self) -> None:
        state = {
            "pid": os.getpid(),
            "api": self.api_url,
            "format": self.options.format,
            "started_at": time.time(),
            "nodes": [{"node_id": h.node_id, "layer": h.layer, "format": h.format,
                       "address": h.address, "gateway_port": h.gateway_port,
                       "pid": h.process.pid}
                      for h in self._handles if h.state == "up"],
        }
        path = self.data_dir / STATE_FILE
        tmp = path.with_suffix(".tmp")
        with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as fh:
            json.dump(state, fh, indent=1)
        os.replace(tmp, path)

    async def stop(self, *, cut_grace: bool = False) -> None:
        """Stop every node (each drains what it accepted), then the API; idempotent.
        `cut_grace`: the nodes leave without their grace period (SIGINT, not SIGTERM)."""
        if self._stopping:
            return
        self._stopping = True
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
        sig = signal.SIGINT if cut_grace else signal.SIGTERM
        await asyncio.gather(*(self._terminate(h, sig) for h in self._handles))
        if self._server is not None:
            await self._server.stop()
        if self.store is not None:
            if self._key_id is not None:
                with contextlib.suppress(Exception):
                    await self.store.api_keys.revoke(self._key_id)
            await self.store.close()
            self.store = None
        state = self.data_dir / STATE_FILE
        with contextlib.suppress(OSError):
            if json.loads(state.read_text()).get("pid") == os.getpid():
                state.unlink()

    def cut_grace(self) -> None:
        """Make every node still running end its leave's grace now (SIGINT): the second
        Ctrl-C of `fogcore up` while it stops."""
        for handle in self._handles:
            proc = handle.process
            if proc is not None and proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGINT)

    # -- nodes ---------------------------------------------------------------------------

    async def _launch(self, layer: str, format: str) -> NodeHandle:
        opts = self.options
        index = self._next_index
        self._next_index += 1
        workdir = self.data_dir / "nodes" / f"{index:02d}-{layer}"
        workdir.mkdir(parents=True)
        prefix, host = (opts.placement(index) if opts.placement else ((), opts.node_host))
        handle = NodeHandle(index, layer, format, workdir, host=host)
        handle.series = NodeSeries(opts.history_s, opts.stats_interval_s)
        self._handles.append(handle)
        settings = {
            "listen_host": host,
            "listen_port": _free_port_pair(host) if not opts.placement else 4100 + index,
            "layer": layer,
            "format": format,
            "keys_file": str(workdir / "keys.json"),
            "directory_url": self.api_url,
            "mean_delay_ms": opts.mean_delay_ms,
            "max_delay_ms": opts.max_delay_ms,
            "delay_epoch_s": opts.delay_epoch_s,
            "stats_interval_s": opts.stats_interval_s,
            "arena_slots": 2048,
            "replay_capacity": 200_000,
            "drain_timeout_s": 5.0,
            "backoff_max_s": 1.0,
            **opts.node_settings,
        }
        handle.delay_mean_us = int(float(settings["mean_delay_ms"]) * 1000)
        handle.delay_max_us = int(float(settings["max_delay_ms"]) * 1000)
        config = workdir / "node.toml"
        config.write_text("[node]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in settings.items()))
        env = dict(os.environ, FOG_NODE_DIRECTORY_KEY=self._api_key)
        log_file = open(workdir / "node.log", "ab")  # noqa: SIM115 - handed to the child
        try:
            handle.process = await asyncio.create_subprocess_exec(
                *prefix, sys.executable, "-P", "-m", "fogcore", "node", "--config", str(config),
                "--log-level", "warning",
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=log_file, env=env, start_new_session=True,
                preexec_fn=_die_with_parent, limit=1 << 20)
        finally:
            log_file.close()
        try:
            async with asyncio.timeout(opts.start_timeout_s):
                line = await handle.process.stdout.readline()
            first = json.loads(line)
            if first.get("event") != "listening":
                raise ValueError(first)
        except (TimeoutError, ValueError) as exc:
            handle.state = "failed"
            await self._terminate(handle)
            tail = (workdir / "node.log").read_text(errors="replace")[-2000:]
            raise TestnetError(f"{layer} node {index} did not start ({exc!r}):\n{tail}") \
                from None
        handle.node_id = first["node_id"]
        handle.port = first["port"]
        handle.gateway_port = first.get("gateway_port")
        self.nodes[handle.node_id] = handle
        handle.reader = asyncio.get_running_loop().create_task(self._follow(handle))
        await self._await_listed(handle)
        handle.state = "up"
        log.info("%s node %s up at %s", layer, handle.node_id[:16], handle.address)
        return handle

    async def _await_listed(self, handle: NodeHandle) -> None:
        from fogcore.store import NotFound

        # Listed is not enough: the node counts as started once the directory's prober
        # heard it answer on the network, so clients and the status see it `up` at once.
        deadline = time.monotonic() + self.options.start_timeout_s
        node = None
        while True:
            try:
                node = await self.store.directory.get(handle.node_id)
                if node.state == "up":
                    handle.directory_state, handle.state_since = node.state, node.state_since
                    return
            except NotFound:
                pass
            if handle.process.returncode is not None or time.monotonic() > deadline:
                await self._terminate(handle)
                what = ("never registered with the directory" if node is None else
                        f"never answered the directory's probes (state {node.state})")
                raise TestnetError(f"node {handle.node_id[:16]} {what}; "
                                   f"see {handle.workdir / 'node.log'}")
            await asyncio.sleep(0.05)

    async def _watch_directory(self) -> None:
        """Copy the directory's node states into the handles every DIRECTORY_POLL_S and
        report changes (the prober in the API writes them; a cut-off host's nodes turn
        `unreachable` within seconds)."""
        while True:
            try:
                nodes = await self.store.directory.list(include_expired=True, limit=1000)
            except Exception as exc:  # the store closing at shutdown, a busy file
                log.debug("directory states not read: %r", exc)
                nodes = []
            for node in nodes:
                handle = self.nodes.get(node.node_id)
                if handle is None or handle.state != "up":
                    continue
                before = handle.directory_state
                handle.directory_state, handle.state_since = node.state, node.state_since
                if before != node.state and not (before == "unknown" and node.state == "up"):
                    level = logging.WARNING if "unreachable" in (before, node.state) \
                        else logging.INFO
                    log.log(level, "%s node %s at %s: %s -> %s", handle.layer,
                            handle.node_id[:16], handle.address, before, node.state)
            await asyncio.sleep(DIRECTORY_POLL_S)

    async def _follow(self, handle: NodeHandle) -> None:
        """Read the node's stats lines until it exits; report an exit nobody asked for."""
        stream = handle.process.stdout
        while True:
            line = await stream.readline()
            if not line:
                break
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("event") == "stats":
                try:
                    handle.series.add(record)
                except (KeyError, TypeError, ValueError):
                    pass
        handle.exit_code = await handle.process.wait()
        if not handle.stopping and not self._stopping:
            handle.state = "down"
            log.error("%s node %s exited on its own (code %s); not restarted; see %s",
                      handle.layer, handle.node_id[:16], handle.exit_code,
                      handle.workdir / "node.log")
            with contextlib.suppress(Exception):
                await self.store.directory.delete(handle.node_id)
            self.failed.set()
            self._write_state()

    async def _terminate(self, handle: NodeHandle, sig: int = signal.SIGTERM) -> None:
        handle.stopping = True
        proc = handle.process
        if proc is None:
            return
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(sig)
            try:
                async with asyncio.timeout(15.0):
                    await proc.wait()
            except TimeoutError:
                log.error("node %s did not stop; killing it", handle.node_id[:16])
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if handle.reader is not None:
            # The reader ends with the process's output; never wait on it unbounded, and
            # never absorb a cancellation of the caller.
            done, _ = await asyncio.wait({handle.reader}, timeout=5.0)
            if not done:
                handle.reader.cancel()
            elif not handle.reader.cancelled() and handle.reader.exception() is not None:
                log.warning("stats reader of node %s failed: %r", handle.node_id[:16],
                            handle.reader.exception())
        if handle.state != "failed":
            handle.state = "stopped"

    # -- TestnetControl ------------------------------------------------------------------

    def _live(self) -> list[NodeHandle]:
        return [h for h in self._handles if h.node_id and h.state in ("up", "down")]

    def status(self) -> dict:
        """The `GET /api/betanet/status` document."""
        nodes = self._live()
        views = [h.view() for h in nodes]
        layers = {name: 0 for name in LAYER_NAMES}
        for h in nodes:
            layers[h.layer] += 1
        known = {h.node_id for h in nodes}
        links = []
        for h in nodes:
            if h.shown_state not in ("up", "draining"):
                continue
            for peer, rate in sorted(h.series.links.items()):
                if peer in known:
                    links.append({"from": h.node_id, "to": peer, "packets_per_s": rate})
        drops: dict[str, int] = {}
        for h in nodes:
            for reason, n in h.series.drops_total.items():
                drops[reason] = drops.get(reason, 0) + int(n)
        up = [v for v in views if v["state"] in ("up", "draining")]
        delayed = [v for v in up if v["mean_delay_ms"] > 0]
        totals = {
            "packets_in_per_s": sum(v["packets_in_per_s"] for v in up),
            "packets_out_per_s": sum(v["packets_out_per_s"] for v in up),
            "drops_per_s": sum(v["drops_per_s"] for v in up),
            "drops_by_reason": drops,
            "queue_depth": sum(v["queue_depth"] for v in up),
            "mean_delay_ms": (sum(v["mean_delay_ms"] for v in delayed) / len(delayed)
                              if delayed else 0.0),
        }
        return {"time": time.time(), "nodes": views, "layers": layers, "links": links,
                "totals": totals}

    def node_view(self, node_id: str) -> dict | None:
        """One node object plus its `history` and delay parameters (the API adds `vrf`)."""
        handle = self.nodes.get(node_id)
        if handle is None or handle not in self._live():
            return None
        return handle.detail()

    async def deploy(self, layer: str, format: str) -> dict:
        """Start one more node of `layer` speaking `format`; its node object."""
        if self._stopping:
            raise TestnetError("the testnet is stopping")
        if layer not in LAYER_NAMES or format not in ("sphinx", "kem"):
            raise ValueError("unknown layer or format")
        if format != self.options.format:
            raise FormatMismatch(f"this testnet carries {self.options.format} packets: a "
                                 f"{format} node would get no traffic")
        handle = await self._launch(layer, format)
        self._write_state()
        return handle.view()

    async def remove(self, node_id: str) -> bool:
        """Stop a node (it drains) and remove it from the directory."""
        handle = self.nodes.get(node_id)
        if handle is None or handle not in self._live():
            return False
        await self._terminate(handle)
        self._handles.remove(handle)
        del self.nodes[node_id]
        from fogcore.store import NotFound

        with contextlib.suppress(NotFound):
            await self.store.directory.delete(node_id)
        self._write_state()
        return True

    def describe(self) -> str:
        """Where to look, for people."""
        lines = [f"fogcore testnet up: {len(self._live())} nodes, {self.options.format} packets",
                 f"  API and panel:  {self.api_url}/",
                 f"  API docs:       {self.api_url}/openapi.json"]
        login = self.login
        if "password" in login:
            lines.append(f"  log in as {login['username']!r} with password "
                         f"{login['password']!r} (shown once; set FOG_ADMIN_PASSWORD to "
                         "choose it)")
        elif login.get("password_from") == "FOG_ADMIN_PASSWORD":
            lines.append(f"  log in as {login['username']!r} with FOG_ADMIN_PASSWORD")
        else:
            lines.append(f"  log in with the existing admin account ({login['username']!r})")
        lines.append(f"  data and node logs: {self.data_dir}")
        for h in sorted(self._live(), key=lambda h: (LAYER_NAMES.index(h.layer), h.index)):
            extra = f" fetch :{h.gateway_port}" if h.gateway_port else ""
            lines.append(f"  {h.layer:<8} {h.node_id[:16]}  {h.address}{extra}  "
                         f"{h.shown_state}")
        lines.append("try: fogcore ping --count 20    stop: Ctrl-C")
        return "\n".join(lines)


def _alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))
