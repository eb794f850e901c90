"""Scaling a mix node across cores (docs/node.md, "Scaling across cores").

Two ways were measured (`fogcore bench node`):

- **threads** (kept): one node process running `workers` threads, each processing whole
  batches without the GIL, with one batch more in flight than threads (the node's batch
  lanes), so no thread waits for the loop between batches. One arena, one replay filter
  shared by the threads (atomic check-and-add), one set of links.
- **processes**: `workers` node processes share the listening port with SO_REUSEPORT,
  each with its own arena, replay filter and links. The kernel spreads connections, not
  packets, so a replayed packet sent on another connection can land in another process
  and pass that process's filter. `NodeProcess` and `start_process_group` run this
  layout for the benchmark and for operators who accept that trade-off.

`batch_threads` is the policy for splitting one batch across threads inside
`process_batch` (`threads=`), for callers that process a single batch at a time; the node
instead runs several batches at once and spreads what is ready over idle threads with the
same minimum share, `MIN_FRAMES_PER_THREAD`.
"""

import asyncio
import multiprocessing
import os
from dataclasses import asdict

from fogcore.mixnet.config import NodeConfig, load_config

__all__ = ["MIN_FRAMES_PER_THREAD", "NodeProcess", "batch_threads", "start_process_group"]

#: below this many frames per thread, a second thread costs more than it saves
#: (its start and join are ≈ 20-40 µs, one frame is 60-100 µs of work)
MIN_FRAMES_PER_THREAD = 4


def batch_threads(workers: int, count: int) -> int:
    """How many threads process a run of `count` frames on a node with `workers`."""
    if workers <= 1 or count < 2 * MIN_FRAMES_PER_THREAD:
        return 1
    return max(1, min(workers, count // MIN_FRAMES_PER_THREAD))


def _child(settings: dict, impl: str | None, conn) -> None:
    """Body of a node process: run the node and answer commands from the parent."""
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        factory = asyncio.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(_serve(settings, impl, conn))


async def _serve(settings: dict, impl: str | None, conn) -> None:
    import psutil

    from fogcore.mixnet.node import MixNode

    loop = asyncio.get_running_loop()
    cfg = load_config(env={}, **settings)
    node = MixNode(cfg, impl=impl)
    await node.start()
    proc = psutil.Process()
    done = loop.create_future()

    def on_command() -> None:
        try:
            cmd = conn.recv()
        except EOFError:  # the parent went away: shut down
            cmd = "stop"
        if cmd == "stats":
            stats = node.stats()
            stats["rss_mb"] = proc.memory_info().rss / 2**20
            stats["cpu_s"] = sum(proc.cpu_times()[:2])
            conn.send(stats)
        elif cmd == "clear_replay":
            # What a key rotation does to the filter: lets a benchmark cycle a fixed pool
            # of pre-built packets through full processing.
            node._key.replay_filter.reset()
            conn.send(True)
        elif cmd == "stop" and not done.done():
            done.set_result(None)

    loop.add_reader(conn.fileno(), on_command)
    conn.send(("ready", node.address, os.getpid()))
    await done
    loop.remove_reader(conn.fileno())
    await node.stop()
    conn.send(node.stats())


class NodeProcess:
    """A `MixNode` in a child process (spawned, so nothing of the parent's state is
    shared), driven over a pipe: `stats()`, `clear_replay()`, `stop()`."""

    def __init__(self, config: NodeConfig | dict, impl: str | None = None):
        self.settings = asdict(config) if isinstance(config, NodeConfig) else dict(config)
        self.impl = impl
        self.address: tuple[str, int] | None = None
        self.pid: int | None = None
        self._conn = None
        self._proc = None

    def start(self, timeout: float = 30.0) -> tuple[str, int]:
        """Start the node; return its listening address."""
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(target=_child, args=(self.settings, self.impl, child),
                                 daemon=True)
        self._proc.start()
        child.close()
        self._conn = parent
        if not parent.poll(timeout):
            self.kill()
            raise RuntimeError("the node process did not start")
        _, address, self.pid = parent.recv()
        self.address = tuple(address)
        return self.address

    def _call(self, cmd: str, timeout: float = 30.0):
        self._conn.send(cmd)
        if not self._conn.poll(timeout):
            raise TimeoutError(f"node process: no answer to {cmd!r}")
        return self._conn.recv()

    def stats(self) -> dict:
        """The node's `stats()` plus `rss_mb` and `cpu_s` (user + system) of its process."""
        return self._call("stats")

    def clear_replay(self) -> None:
        """Empty the current key epoch's replay filter (benchmarks only)."""
        self._call("clear_replay")

    def stop(self, timeout: float = 30.0) -> dict:
        """Shut the node down gracefully; return its final stats."""
        try:
            final = self._call("stop", timeout)
        finally:
            self._proc.join(timeout)
            self.kill()
        return final

    def kill(self) -> None:
        """End the process at once (after a failure)."""
        if self._proc is not None and self._proc.is_alive():
            self._proc.kill()
            self._proc.join(5)


def start_process_group(config: NodeConfig | dict, count: int,
                        impl: str | None = None) -> list[NodeProcess]:
    """`count` node processes listening on one port with SO_REUSEPORT (the first picks
    the port when the configuration says 0). Each has its own arena and replay filter."""
    settings = asdict(config) if isinstance(config, NodeConfig) else dict(config)
    settings["reuse_port"] = True
    group: list[NodeProcess] = []
    try:
        for _ in range(count):
            proc = NodeProcess(settings, impl)
            address = proc.start()
            group.append(proc)
            settings["listen_port"] = address[1]
    except BaseException:
        for proc in group:
            proc.kill()
        raise
    return group
