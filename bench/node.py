"""`fogcore bench node`: one mix node over loopback TCP, fed by a load-generator process and
forwarding to a sink process (docs/node.md, "Measured").

Pre-built two-hop packets (node → sink) are written by the load generator in big chunks;
the node processes them with real cryptography and relays them to the sink, which counts
bytes. Every figure of one run shares the machine's state, so the ratios (through the
node vs the in-process batch rate, two workers vs one) are what to quote.

Phases: the load generator's own ceiling (straight into the sink), the in-process batch
rate, end-to-end throughput for both formats with 1 and 2 workers (threads, the node's
`workers` option, and processes sharing the port), processing latency at half of the
peak, memory over a soak at 80 % of the peak, and throughput and memory against the mean
delay and the number of incoming connections.

Soak and rate-limited phases cycle a fixed pool of packets; the node's replay filter is
cleared whenever the pool starts over (what a key rotation does), so every packet is
processed in full instead of being rejected as a replay.
"""

import asyncio
import math
import mmap
import multiprocessing
import os
import statistics
import tempfile
import time

from fogcore import packet
from fogcore.bench.faults import run_faults
from fogcore.mixnet.keystore import KeyStore
from fogcore.mixnet.workers import NodeProcess, start_process_group

__all__ = ["run", "steps"]

NODE_SEED = b"fogcore bench node identity seed"
SINK_SEED = b"fogcore bench sink identity seed"
MAILBOX = b"B" * 32
KEY_EPOCH_S = 10_000_000      # no key rotation during a run
FORMATS = ("sphinx", "kem")
BATCH = 256
#: scales the --quick sizes (tests set it lower to stay well inside their time bound)
SCALE_ENV = "FOGCORE_BENCH_NODE_SCALE"


def _plan(args) -> dict:
    if not getattr(args, "quick", False):
        return dict(pool=120_000, soak_s=600.0, soak_first_s=60.0, phase_s=20.0,
                    delays=(10, 50, 100, 250, 1000), peers=(1, 10, 100, 1000),
                    latency_s=20.0)
    scale = float(os.environ.get(SCALE_ENV, "1") or 1)
    return dict(pool=max(2000, int(16_000 * scale)), soak_s=max(4.0, 20.0 * scale),
                soak_first_s=max(1.0, 4.0 * scale), phase_s=max(1.5, 4.0 * scale),
                delays=(10, 100, 1000), peers=(1, 10, 100, 1000),
                latency_s=max(1.5, 4.0 * scale))


def steps(args) -> int:
    """How many progress steps `run` reports."""
    plan = _plan(args)
    return 3 + 2 + 6 + 2 + len(plan["delays"]) + len(plan["peers"]) + len(FORMATS)


# -- packets ----------------------------------------------------------------------------------

def _build_part(fmt: str, count: int, node_info, sink_info) -> bytes:
    route = [node_info, sink_info]
    return b"".join(packet.build_packet(route, MAILBOX, b"", format=fmt).packet
                    for _ in range(count))


def _build_pool(ctx, fmt: str, count: int, node_info, sink_info, path: str) -> None:
    """`count` distinct packets written back to back to `path` (built on every core)."""
    parts = os.cpu_count() or 1
    share = math.ceil(count / parts)
    with ctx.Pool(parts) as pool:
        chunks = pool.starmap(_build_part, [(fmt, min(share, count - i * share), node_info,
                                             sink_info) for i in range(parts)
                                            if count - i * share > 0])
    with open(path, "wb") as f:
        for chunk in chunks:
            f.write(chunk)


# -- the sink ---------------------------------------------------------------------------------

class _SinkProtocol(asyncio.BufferedProtocol):
    def __init__(self, state):
        self.state = state
        self.buf = bytearray(1 << 18)

    def get_buffer(self, sizehint):
        return self.buf

    def buffer_updated(self, nbytes):
        st = self.state
        st["bytes"] += nbytes
        now = time.monotonic()
        if st["first"] is None:
            st["first"] = now
        st["last"] = now
        if st["timeline"] is not None:
            st["timeline"].append((now, st["bytes"]))


def _sink_main(conn) -> None:
    import uvloop

    async def main():
        loop = asyncio.get_running_loop()
        state = {"bytes": 0, "first": None, "last": None, "timeline": None}
        server = await loop.create_server(lambda: _SinkProtocol(state), "127.0.0.1", 0)
        conn.send(server.sockets[0].getsockname()[:2])
        done = loop.create_future()

        def reply(message) -> None:
            # add_reader made the pipe non-blocking; a large report must not fail with
            # EAGAIN, so it is sent in blocking mode (the parent is waiting to read it).
            os.set_blocking(conn.fileno(), True)
            try:
                conn.send(message)
            finally:
                os.set_blocking(conn.fileno(), False)

        def on_command():
            cmd = conn.recv()
            if cmd == "report":
                reply(dict(state))
            elif cmd in ("reset", "reset_timeline"):
                state.update(bytes=0, first=None, last=None,
                             timeline=[] if cmd == "reset_timeline" else None)
                reply(True)
            elif cmd == "stop" and not done.done():
                done.set_result(None)

        loop.add_reader(conn.fileno(), on_command)
        await done
        server.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as r:
        r.run(main())


# -- the load generator -----------------------------------------------------------------------

class _GenProtocol(asyncio.Protocol):
    def __init__(self):
        self.paused = False
        self.resumed = None
        self.transport = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport
        transport.set_write_buffer_limits(high=1 << 20)

    def pause_writing(self):
        self.paused = True
        self.resumed = asyncio.get_running_loop().create_future()

    def resume_writing(self):
        self.paused = False
        if self.resumed is not None and not self.resumed.done():
            self.resumed.set_result(None)

    def data_received(self, data):
        pass

    def connection_lost(self, exc):
        if not self.closed.done():
            self.closed.set_result(None)


def _gen_main(address, pool_path: str, frame: int, conns: int, rate: float, duration: float,
              passes: int, sent, conn) -> None:
    """Write the pool to `address` over `conns` connections: `passes` times as fast as
    possible (`rate` 0), or cycled at `rate` packets/s for `duration` seconds. `sent` (a shared
    counter) follows the packets handed to the kernel; a log of (time, count) goes back
    over `conn` at the end."""
    import uvloop

    with open(pool_path, "rb") as f:
        data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    view = memoryview(data)
    total = len(data) // frame

    async def main():
        loop = asyncio.get_running_loop()
        protos = []
        for _ in range(conns):
            _, proto = await loop.create_connection(_GenProtocol, *address)
            protos.append(proto)
        conn.send("connected")
        conn.recv()  # go
        log = []
        if rate <= 0:
            for _ in range(passes):
                await _unlimited(protos, view, frame, total, sent)
        else:
            await _paced(loop, protos, view, frame, total, rate, duration, sent, log)
        # Everything written must reach the kernel before the process exits: a frame cut
        # short would be counted as truncated and the rest of the stream lost.
        while any(p.transport.get_write_buffer_size() for p in protos):
            await asyncio.sleep(0.005)
        for p in protos:
            p.transport.close()
        await asyncio.gather(*(p.closed for p in protos))
        return log

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as r:
        log = r.run(main())
    view.release()
    data.close()
    conn.send(log)


async def _unlimited(protos, view, frame, total, sent) -> None:
    chunk = 64  # frames per write: one big write per connection turn
    share = math.ceil(total / len(protos))

    async def one(i, proto):
        pos, end = i * share, min(total, (i + 1) * share)
        while pos < end:
            n = min(chunk, end - pos)
            proto.transport.write(view[pos * frame:(pos + n) * frame])
            pos += n
            sent.value += n
            if proto.paused:
                await proto.resumed

    await asyncio.gather(*(one(i, p) for i, p in enumerate(protos)))


async def _paced(loop, protos, view, frame, total, rate, duration, sent, log) -> None:
    tick = 0.002
    start = loop.time()
    pos = 0
    done = 0
    turn = 0
    while True:
        now = loop.time()
        if now - start >= duration:
            break
        due = int((now - start) * rate) - done
        while due > 0:
            proto = protos[turn % len(protos)]
            turn += 1
            n = min(due, 64, total - pos)
            if not proto.paused:
                proto.transport.write(view[pos * frame:(pos + n) * frame])
            # a paused connection skips its turn: the node is pushing back
            pos = (pos + n) % total
            done += n
            due -= n
        sent.value = done
        log.append((time.monotonic(), done))
        await asyncio.sleep(tick)


class _Generator:
    def __init__(self, ctx, address, pool_path, frame, conns=1, rate=0.0, duration=0.0,
                 passes=1):
        self.sent = ctx.Value("q", 0, lock=False)
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_gen_main, daemon=True,
                                 args=(address, pool_path, frame, conns, rate, duration,
                                       passes, self.sent, child))
        self._proc.start()
        child.close()
        if not self._conn.poll(60):
            raise RuntimeError("load generator did not connect")
        self._conn.recv()

    def go(self) -> None:
        self._conn.send("go")

    def finish(self, timeout: float = 900.0) -> list:
        if not self._conn.poll(timeout):
            self._proc.kill()
            raise TimeoutError("load generator did not finish")
        log = self._conn.recv()
        self._proc.join(10)
        return log


# -- phases -----------------------------------------------------------------------------------

class _Bench:
    def __init__(self, args, progress):
        self.args = args
        self.progress = progress
        self.plan = _plan(args)
        self.ctx = multiprocessing.get_context("spawn")
        self.tmp = tempfile.mkdtemp(prefix="fogcore-bench-node-")
        self.results: dict = {}

    # setup and teardown

    def start(self) -> None:
        self._sink_conn, child = self.ctx.Pipe()
        self._sink = self.ctx.Process(target=_sink_main, args=(child,), daemon=True)
        self._sink.start()
        child.close()
        self.sink_address = tuple(self._sink_conn.recv())
        self.keys_file = os.path.join(self.tmp, "keys.json")
        ks = KeyStore(self.keys_file, key_epoch_s=KEY_EPOCH_S, overlap_s=0,
                      identity_seed=NODE_SEED)
        self.keys = ks.keys_for(ks.epoch_at())
        self.sink_keys = packet.NodeKeys.from_seed(SINK_SEED)
        self.pools = {}
        for fmt in FORMATS:
            path = os.path.join(self.tmp, f"{fmt}.pool")
            t0 = time.perf_counter()
            _build_pool(self.ctx, fmt, self.plan["pool"], self.keys.info(),
                        self.sink_keys.info(), path)
            self.pools[fmt] = path
            self.progress.step(f"built {self.plan['pool']} {fmt} packets in "
                               f"{time.perf_counter() - t0:.1f} s")

    def close(self) -> None:
        try:
            self._sink_conn.send("stop")
            self._sink.join(10)
        finally:
            if self._sink.is_alive():
                self._sink.kill()
            for name in os.listdir(self.tmp):
                os.unlink(os.path.join(self.tmp, name))
            os.rmdir(self.tmp)

    def sink(self, cmd: str):
        self._sink_conn.send(cmd)
        return self._sink_conn.recv()

    def settings(self, fmt: str, **extra) -> dict:
        settings = dict(format=fmt, keys_file=self.keys_file, key_epoch_s=KEY_EPOCH_S,
                        key_overlap_s=0, mean_delay_ms=1.0, max_delay_ms=20.0,
                        replay_capacity=max(2 * self.plan["pool"], 100_000),
                        peers={self.sink_keys.node_id.hex(): "{}:{}".format(*self.sink_address)},
                        # the sink answers no probe; the generator opens up to 1000
                        # connections from 127.0.0.1; between phases a node stops at
                        # once (no one routes through it, so it needs no leave grace)
                        probe_interval_s=0, max_connections_per_source=0, leave_grace_s=0)
        settings.update(extra)
        return settings

    # measurements

    def loadgen_ceiling(self) -> None:
        fmt = "kem"
        frame = packet.FRAME_SIZES[fmt]
        # the pool five times over, straight into the sink: what one generator process
        # can offer, which must stay well above any node figure
        res = self._unlimited(self.sink_address, fmt, passes=5)
        res["frame_bytes"] = frame
        self.results["loadgen.ceiling"] = res
        self.progress.step("load generator alone")

    def inprocess(self, fmt: str) -> None:
        from fogcore import replay

        frame = packet.FRAME_SIZES[fmt]
        with open(self.pools[fmt], "rb") as f:
            data = f.read()
        count = min(len(data) // frame, 20_000 if not self.args.quick else 4000)
        S = packet.BATCH_STRIDE
        buf = bytearray(BATCH * S)
        records = bytearray(BATCH * packet.OUTCOME_RECORD_SIZE)
        filt = replay.ReplayFilter(2 * count, 1e-6)
        elapsed = 0.0
        done = 0
        while done < count:
            n = min(BATCH, count - done)
            for i in range(n):
                off = (done + i) * frame
                buf[i * S:i * S + frame] = data[off:off + frame]
            t0 = time.perf_counter()
            packet.process_batch(self.keys, buf, n, filt, records)
            elapsed += time.perf_counter() - t0
            done += n
        self.results[f"inprocess.{fmt}"] = {"ops_per_s": round(count / elapsed, 1),
                                            "median_us": round(elapsed / count * 1e6, 3),
                                            "packets": count, "batch": BATCH}
        self.progress.step(f"in-process batch rate, {fmt}")

    def _unlimited(self, address, fmt: str, conns: int = 1, passes: int = 1) -> dict:
        frame = packet.FRAME_SIZES[fmt]
        total = os.path.getsize(self.pools[fmt]) // frame * passes
        self.sink("reset")
        gen = _Generator(self.ctx, address, self.pools[fmt], frame, conns=conns,
                         passes=passes)
        started = time.monotonic()  # one clock for every process of the machine
        gen.go()
        gen.finish()
        got = self._wait_sink(total * frame)
        rep = self.sink("report")
        packets = got // frame
        span = max(1e-6, rep["last"] - started) if rep["first"] else float("inf")
        return {"ops_per_s": round(packets / span, 1), "packets": packets, "sent": total,
                "seconds": round(span, 3)}

    def _wait_sink(self, want: int, quiet_s: float = 3.0) -> int:
        last, since = -1, time.monotonic()
        while True:
            got = self.sink("report")["bytes"]
            if got >= want:
                return got
            if got != last:
                last, since = got, time.monotonic()
            elif time.monotonic() - since > quiet_s:
                return got
            time.sleep(0.02)

    def e2e(self, fmt: str, workers: int, mode: str = "threads") -> dict:
        settings = self.settings(fmt, workers=workers if mode == "threads" else 1)
        if mode == "threads":
            nodes = [NodeProcess(settings)]
            address = nodes[0].start()
            conns = 1
        else:
            nodes = start_process_group(settings, workers)
            address = nodes[0].address
            conns = 8  # the kernel spreads connections, not packets, across the group
        try:
            res = self._unlimited(address, fmt, conns)
            stats = [n.stats() for n in nodes]
        finally:
            for n in nodes:
                n.stop()
        res["rejects"] = {}
        for s in stats:
            for reason, n in s["rejects"].items():
                res["rejects"][reason] = res["rejects"].get(reason, 0) + n
        res["node_cpu_s"] = round(sum(s["cpu_s"] for s in stats), 2)
        inproc = self.results[f"inprocess.{fmt}"]["ops_per_s"]
        res["vs_inprocess"] = round(res["ops_per_s"] / inproc, 3)
        return res

    def paced(self, fmt: str, rate: float, duration: float, conns: int = 1,
              samples=(), timeline: bool = False, **extra) -> dict:
        """Run the node at `rate` for `duration`, cycling the pool; RSS read at `samples`
        seconds; with `timeline`, per-packet latency from generator to sink."""
        frame = packet.FRAME_SIZES[fmt]
        pool = os.path.getsize(self.pools[fmt]) // frame
        node = NodeProcess(self.settings(fmt, **extra))
        address = node.start()
        self.sink("reset_timeline")
        try:
            gen = _Generator(self.ctx, address, self.pools[fmt], frame, conns=conns,
                             rate=rate, duration=duration)
            rss = {"start_mb": round(node.stats()["rss_mb"], 1)}
            gen.go()
            t0 = time.monotonic()
            halves = 0
            peak_queue = 0
            pending = sorted(samples)
            while gen._proc.is_alive() and not gen._conn.poll(0):
                # Cleared every half pool: packets still in flight from before a clear
                # come round again only after the next one.
                half = gen.sent.value // max(1, pool // 2)
                if half > halves:
                    halves = half
                    node.clear_replay()
                st = node.stats()
                peak_queue = max(peak_queue, st["delay_queue"] + st["links_queued"])
                if pending and time.monotonic() - t0 >= pending[0]:
                    rss[f"at_{pending.pop(0):g}s_mb"] = round(st["rss_mb"], 1)
                time.sleep(0.02)
            log = gen.finish()
            self._wait_sink(gen.sent.value * frame, quiet_s=2.0)
            stats = node.stats()
        finally:
            node.stop()
        rep = self.sink("report")
        rss["end_mb"] = round(stats["rss_mb"], 1)
        received = rep["bytes"] // frame
        res = {"offered_per_s": round(rate, 1), "ops_per_s": _steady_rate(rep["timeline"],
                                                                          t0, duration, frame),
               "packets": received, "sent": gen.sent.value, "seconds": round(duration, 2),
               "peak_queued": peak_queue, "rejects": stats["rejects"],
               "drops": stats["link_drops"], "rss": rss}
        if timeline:
            res["latency_ms"] = _latency(log, rep["timeline"], frame)
        return res


def _steady_rate(timeline, t0: float, duration: float, frame: int) -> float:
    """Packets/s reaching the sink over the second half of the sending window, once the
    delay queue has filled up to its steady level."""
    lo, hi = t0 + duration / 2, t0 + duration
    inside = [(t, b) for t, b in timeline if lo <= t <= hi]
    if len(inside) < 2:
        return 0.0
    (ta, ba), (tb, bb) = inside[0], inside[-1]
    return round((bb - ba) / frame / max(tb - ta, 1e-6), 1)


def _latency(send_log, recv_log, frame: int) -> dict:
    """Percentiles of (time the k-th packet reached the sink) − (time it was written), with
    packets matched by their position in the stream."""
    if not send_log or not recv_log:
        return {}
    recv_counts = [b // frame for _, b in recv_log]
    samples = []
    j = 0
    prev = 0
    for t_send, count in send_log:
        if count == prev:
            continue
        k = count  # the last packet of this write
        prev = count
        while j < len(recv_counts) and recv_counts[j] < k:
            j += 1
        if j == len(recv_counts):
            break
        samples.append((recv_log[j][0] - t_send) * 1e3)
    if len(samples) < 10:
        return {}
    q = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50_ms": round(q[49], 3), "p99_ms": round(q[98], 3), "samples": len(samples)}


def run(args, progress) -> dict:
    """Run every phase; return the results by name."""
    bench = _Bench(args, progress)
    plan = bench.plan
    r = bench.results
    bench.start()
    try:
        bench.loadgen_ceiling()
        for fmt in FORMATS:
            bench.inprocess(fmt)
        for fmt in FORMATS:
            for workers in (1, 2):
                r[f"e2e.{fmt}.workers{workers}"] = bench.e2e(fmt, workers)
                progress.step(f"{fmt} through the node, {workers} worker(s)")
            r[f"e2e.{fmt}.processes2"] = bench.e2e(fmt, 2, mode="processes")
            progress.step(f"{fmt} through 2 node processes sharing the port")
        for fmt in FORMATS:
            one = r[f"e2e.{fmt}.workers1"]["ops_per_s"]
            r[f"scaling.{fmt}"] = {
                "threads2_vs_1": round(r[f"e2e.{fmt}.workers2"]["ops_per_s"] / one, 3),
                "processes2_vs_1": round(r[f"e2e.{fmt}.processes2"]["ops_per_s"] / one, 3)}
        fmt = "kem"
        best = max((1, 2), key=lambda w: r[f"e2e.{fmt}.workers{w}"]["ops_per_s"])
        peak = r[f"e2e.{fmt}.workers{best}"]["ops_per_s"]
        pool = plan["pool"]
        # within one pass of the pool, so that no packet is ever a replay
        lat_s = min(plan["latency_s"], 0.9 * pool / (0.5 * peak))
        lat = bench.paced(fmt, 0.5 * peak, lat_s, timeline=True, workers=best,
                          mean_delay_ms=0.0, max_delay_ms=0.0)
        r["latency"] = {**lat.pop("latency_ms"), "format": fmt, "workers": best,
                        "rejects": lat["rejects"], "seconds": round(lat_s, 2),
                        "rate_per_s": lat["offered_per_s"], "ops_per_s": lat["ops_per_s"]}
        progress.step("latency at 50 % of peak")
        # RSS read at the first reading and every such interval after it, so that a
        # slow climb can be told from a one-off step.
        step = plan["soak_first_s"]
        times = [step * k for k in range(1, int(plan["soak_s"] // step) + 1)
                 if step * k < plan["soak_s"]]
        soak = bench.paced(fmt, 0.8 * peak, plan["soak_s"], workers=best, samples=times)
        first = soak["rss"].get(f"at_{step:g}s_mb", soak["rss"]["start_mb"])
        readings = {f"{t:g}": soak["rss"][f"at_{t:g}s_mb"] for t in times
                    if f"at_{t:g}s_mb" in soak["rss"]}
        readings[f"{plan['soak_s']:g}"] = soak["rss"]["end_mb"]
        r["rss"] = {"start_mb": first, "end_mb": soak["rss"]["end_mb"],
                    "readings_mb": readings,
                    "idle_mb": soak["rss"]["start_mb"], "first_reading_s": plan["soak_first_s"],
                    "soak_s": plan["soak_s"], "rate_per_s": soak["offered_per_s"],
                    "ops_per_s": soak["ops_per_s"], "format": fmt, "workers": best,
                    "rejects": soak["rejects"], "drops": soak["drops"]}
        progress.step("soak at 80 % of peak")
        for ms in plan["delays"]:
            # long enough for the delay queue to reach its steady level in the first half
            res = bench.paced(fmt, 0.8 * peak, max(plan["phase_s"], 8 * ms / 1000 + 1.0),
                              workers=best, mean_delay_ms=float(ms),
                              max_delay_ms=float(20 * ms))
            r[f"delay.{ms}"] = {"ops_per_s": res["ops_per_s"], "offered_per_s":
                                res["offered_per_s"], "rss_mb": res["rss"]["end_mb"],
                                "peak_queued": res["peak_queued"], "drops": res["drops"],
                                "rejects": res["rejects"]}
            progress.step(f"mean delay {ms} ms")
        for n in plan["peers"]:
            res = bench.paced(fmt, 0.8 * peak, plan["phase_s"], conns=n, workers=best)
            r[f"peers.{n}"] = {"ops_per_s": res["ops_per_s"], "offered_per_s":
                               res["offered_per_s"], "rss_mb": res["rss"]["end_mb"],
                               "rejects": res["rejects"]}
            progress.step(f"{n} incoming connection(s)")
    finally:
        bench.close()
    for fmt in FORMATS:
        r[f"faults.{fmt}"] = run_faults(fmt, bool(getattr(args, "quick", False)),
                                        log=lambda *_: None,
                                        scale=float(os.environ.get(SCALE_ENV, "1") or 1))
        progress.step(f"{fmt}: a node stopped and one cut off under client load")
    return r
