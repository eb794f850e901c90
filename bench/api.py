"""`fogcore bench api`: throughput and latency of the HTTP API, one uvicorn worker.

For each backend (SQLite, PostgreSQL) a server process runs the full app on a store seeded
with 1,000 signed node descriptors, an admin, and API keys; a load generator in another
process measures:

- at saturation, with wrk (closed loop, its Lua `done` hook reports the percentiles):
  `GET /api/dashboard/stats` (with a viewer API key), `GET /api/directory/nodes` (public,
  first page of 100 of the 1,000 nodes), an authenticated write (`POST
  /api/directory/nodes` refreshing a signed descriptor: signature check, store upsert and an
  audit row per request), and the dashboard with its one-second read cache turned off;
- at a fixed rate (2,000 requests/s by default) for the two reads, with the paced generator
  in this module (open loop: latency counts from when a request was due, so a stalled
  server cannot hide its queueing).

In the same run a bare Starlette app (no middleware, no store), served by uvicorn exactly
as `fogcore serve` serves the API, answers with the same dashboard JSON from memory: the
yardstick for "full stack ≥ 50 % of bare". The dashboard at saturation is measured in
three rounds alternating with the yardstick (one with --quick); the ratio compares the
medians. Every wrk run follows an uncounted warm-up (two seconds; one for runs under five).

With two CPUs or more, every server runs pinned to the first CPU and the load generators
to the others, so that the two never compete for a core and runs compare like with like.

Knobs (environment): FOG_BENCH_API_BACKENDS (default "sqlite,postgresql"),
FOG_BENCH_API_SECONDS (seconds per measurement), FOG_BENCH_API_RATE (paced rate),
FOG_TEST_DATABASE_URL (PostgreSQL server; default the local one).

The module is also the server and paced-load processes it starts:
`python -m fogcore.bench.api serve ...` and `python -m fogcore.bench.api load ...`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

__all__ = ["steps", "run"]

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
NODES = 1000
WRK_CONNECTIONS = 32
WARMUP_SECONDS = 2
RATIO_ROUNDS = 3  # alternating full-stack and yardstick runs of the dashboard
PACED_CONNECTIONS = 64
SATURATION = ("stats", "nodes", "write", "stats_uncached")
PACED = ("stats", "nodes")

# wrk's done() hook: print one JSON line with the figures the suite needs.
_WRK_LUA = """
{setup}
done = function(summary, latency, requests)
  local s = summary.duration / 1e6
  io.write(string.format(
    '{{"requests": %d, "seconds": %.6f, "p50_us": %d, "p99_us": %d, "max_us": %d, '
    .. '"errors_status": %d, "errors_socket": %d}}\\n',
    summary.requests, s, latency:percentile(50), latency:percentile(99), latency.max,
    summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.timeout))
end
"""


def _backends() -> list[str]:
    text = os.environ.get("FOG_BENCH_API_BACKENDS", "sqlite,postgresql")
    return [b.strip() for b in text.split(",") if b.strip()]


def _seconds(args) -> float:
    if os.environ.get("FOG_BENCH_API_SECONDS"):
        return float(os.environ["FOG_BENCH_API_SECONDS"])
    return 1.5 if args.quick else 10.0


def _rate() -> int:
    return int(os.environ.get("FOG_BENCH_API_RATE", "2000"))


def steps(args) -> int:
    """Number of progress steps: the yardstick, then per backend seeding and measurements."""
    per_backend = 1 + len(SATURATION) + len(PACED)
    return 2 + per_backend * len(_backends())


# --------------------------------------------------------------------------- set-up


def _cpu_split() -> tuple[set[int], set[int]] | None:
    """(server CPUs, load-generator CPUs): the server on one CPU, the generator on the
    others, so that neither steals time from the other and runs compare like with like.
    None with fewer than two CPUs available."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None
    if len(cpus) < 2:
        return None
    return {cpus[0]}, set(cpus[1:])


def _pinned(which: int):
    """A `preexec_fn` that pins the child to the server (0) or generator (1) CPUs."""
    split = _cpu_split()
    if split is None:
        return None
    cpus = split[which]
    return lambda: os.sched_setaffinity(0, cpus)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_base() -> str:
    return os.environ.get("FOG_TEST_DATABASE_URL") or DEFAULT_PG_URL


async def _pg(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_pg_base(), timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _seed(url: str) -> dict:
    """Seed the store: an admin with a viewer key and an operator key, 1,000 nodes.
    Returns the keys and one signed descriptor for the write test."""
    import nacl.bindings as nb

    from fogcore.api.auth import _hash_password_sync, new_api_key, token_hash
    from fogcore.mixnet.descriptor import sign_descriptor
    from fogcore.store import open_store

    store = await open_store(url)
    try:
        user = await store.users.create(
            "bench", _hash_password_sync(secrets.token_urlsafe(16)), "admin"
        )
        keys = {}
        for role in ("viewer", "operator"):
            secret, prefix = new_api_key()
            await store.api_keys.create(token_hash(secret), role, user.id, role, prefix=prefix)
            keys[role] = secret
        layers = ("entry", "mix", "exit")
        write = None
        async with store.transaction():
            for i in range(NODES):
                d = sign_descriptor(
                    secrets.token_bytes(32),
                    routing_key=nb.crypto_scalarmult_base(secrets.token_bytes(32)),
                    layer=layers[i % 3],
                    format=("sphinx", "kem")[i % 2],
                    address=f"10.{i // 256 % 256}.{i % 256}.1:{9000 + i % 1000}",
                    lifetime=24 * 3600,
                )
                await store.directory.upsert(
                    node_id=d.node_id, identity_key=d.identity_key, routing_key=d.routing_key,
                    layer=d.layer, format=d.format, address=d.address, descriptor=d.encoded,
                    signature=d.signature, info=d.info(), published_at=float(d.published_at),
                    expires_at=float(d.expires_at),
                )
                write = d
        assert write is not None
        body = {"descriptor": write.encoded.hex(), "signature": write.signature.hex()}
        return {"keys": keys, "write_body": json.dumps(body)}
    finally:
        await store.close()


class _Server:
    """A uvicorn server subprocess (the full app or the bare yardstick)."""

    def __init__(self, kind: str, workdir: Path, *, database: str | None = None,
                 body_file: Path | None = None, read_cache_ttl: float | None = None):
        self.port = _free_port()
        argv = [sys.executable, "-P", "-m", "fogcore.bench.api", "serve", "--app", kind,
                "--port", str(self.port)]
        if database:
            argv += ["--database", database]
        if body_file:
            argv += ["--body-file", str(body_file)]
        if read_cache_ttl is not None:
            argv += ["--read-cache-ttl", str(read_cache_ttl)]
        self.log = open(workdir / f"server-{kind}-{self.port}.log", "wb")  # noqa: SIM115
        env = {k: v for k, v in os.environ.items() if k != "FOG_ADMIN_PASSWORD"}
        self.process = subprocess.Popen(argv, stdout=self.log, stderr=self.log, env=env,
                                        preexec_fn=_pinned(0))
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"the {kind} server did not start; see {self.log.name}")
            time.sleep(0.05)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


# --------------------------------------------------------------------------- load


def _wrk(url: str, seconds: float, workdir: Path, *, method: str = "GET",
         headers: dict | None = None, body: str | None = None) -> dict:
    """Saturate `url` with wrk; requests/s and latency percentiles."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (Debian package `wrk`)")
    setup = [f'wrk.method = "{method}"']
    for name, value in (headers or {}).items():
        setup.append(f'wrk.headers["{name}"] = {json.dumps(value)}')
    if body is not None:
        setup.append(f"wrk.body = {json.dumps(body)}")
    script = workdir / f"wrk-{secrets.token_hex(4)}.lua"
    script.write_text(_WRK_LUA.format(setup="\n".join(setup)))
    # A warm-up run, not counted: a fresh server is slower for its first seconds under
    # load (allocator arenas, caches, CPU clocks), which would bias short runs.
    warmup = WARMUP_SECONDS if seconds >= 5 else 1
    subprocess.run(
        ["wrk", "-t1", f"-c{WRK_CONNECTIONS}", f"-d{warmup}s", "--timeout", "5s",
         "-s", str(script), url],
        capture_output=True, timeout=warmup + 60, check=True, preexec_fn=_pinned(1),
    )
    out = subprocess.run(
        ["wrk", "-t1", f"-c{WRK_CONNECTIONS}", f"-d{max(1, round(seconds))}s",
         "--timeout", "5s", "-s", str(script), url],
        capture_output=True, text=True, timeout=seconds + 60, check=True,
        preexec_fn=_pinned(1),
    ).stdout
    figures = json.loads(next(line for line in out.splitlines() if line.startswith("{")))
    rps = figures["requests"] / figures["seconds"]
    return {
        "tool": "wrk",
        "connections": WRK_CONNECTIONS,
        "duration_s": round(figures["seconds"], 3),
        "requests": figures["requests"],
        "ops_per_s": round(rps, 1),
        "p50_ms": round(figures["p50_us"] / 1000, 3),
        "p99_ms": round(figures["p99_us"] / 1000, 3),
        "max_ms": round(figures["max_us"] / 1000, 3),
        "errors": figures["errors_status"] + figures["errors_socket"],
    }


def _paced(url: str, rate: int, seconds: float, headers: dict | None = None) -> dict:
    """Run the paced load generator in its own process."""
    argv = [sys.executable, "-P", "-m", "fogcore.bench.api", "load", "--url", url,
            "--rate", str(rate), "--seconds", str(seconds),
            "--connections", str(PACED_CONNECTIONS)]
    for name, value in (headers or {}).items():
        argv += ["--header", f"{name}: {value}"]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=True,
                         preexec_fn=_pinned(1))
    return json.loads(out.stdout)


async def _paced_load(url: str, rate: int, seconds: float, connections: int,
                      headers: list[str]) -> dict:
    """Open-loop load: request i is due at start + i / rate whatever happened before; its
    latency runs from that due time to the end of its response. Keep-alive HTTP/1.1
    connections; a due request waits for a free connection (that wait counts)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\n"
        + "".join(f"{h}\r\n" for h in headers)
        + "\r\n"
    ).encode()
    total = int(rate * seconds)
    due: asyncio.Queue[float] = asyncio.Queue()
    latencies: list[float] = []
    errors = 0

    async def connection() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        try:
            while True:
                when = await due.get()
                if when < 0:
                    return
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - when)
                if not head.startswith(b"HTTP/1.1 2"):
                    errors += 1
        finally:
            writer.close()

    workers = [asyncio.create_task(connection()) for _ in range(connections)]
    await asyncio.sleep(0.2)  # connections open before the clock starts
    start = time.perf_counter()
    sent = 0
    while sent < total:
        now = time.perf_counter()
        ready = min(total, int((now - start) * rate) + 1)
        while sent < ready:
            due.put_nowait(start + sent / rate)
            sent += 1
        await asyncio.sleep(max(0.0, start + sent / rate - time.perf_counter()))
    for _ in workers:
        due.put_nowait(-1.0)
    await asyncio.gather(*workers)
    elapsed = time.perf_counter() - start
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 3)

    return {
        "tool": "paced generator (asyncio, open loop)",
        "connections": connections,
        "target_rps": rate,
        "achieved_rps": round(len(latencies) / elapsed, 1),
        "requests": len(latencies),
        "duration_s": round(elapsed, 3),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": round(latencies[-1] * 1000, 3),
        "errors": errors,
    }


# --------------------------------------------------------------------------- the suite


def _versus_bare(url: str, viewer: dict, bare: _Server, seconds: float, workdir: Path,
                 rounds: int) -> dict:
    """The dashboard at saturation on the full stack and on the yardstick, alternately
    `rounds` times: the figures of the full stack's median round, with every round's
    requests/s of both. Alternating and taking medians keeps a slow spell of the machine
    from landing on one side of the comparison only."""
    full_runs, bare_runs = [], []
    for _ in range(rounds):
        full_runs.append(_wrk(url + "/api/dashboard/stats", seconds, workdir, headers=viewer))
        bare_runs.append(_wrk(bare.url + "/api/dashboard/stats", seconds, workdir))
    figures = dict(_median_run(full_runs))
    figures["rounds"] = [{"full": f["ops_per_s"], "bare": b["ops_per_s"]}
                         for f, b in zip(full_runs, bare_runs, strict=True)]
    figures["bare"] = _median_run(bare_runs)
    return figures


def _median_run(runs: list[dict]) -> dict:
    """The run with the median requests/s (the lower middle one of an even count)."""
    ordered = sorted(runs, key=lambda r: r["ops_per_s"])
    return ordered[(len(ordered) - 1) // 2]


def _measure_backend(backend: str, args, progress, workdir: Path, results: dict,
                     seconds: float, rate: int, yardstick) -> dict | None:
    """All measurements on one backend; returns the dashboard's saturation figures.
    `yardstick()` gives the running bare server (started on first use)."""
    schema = None
    if backend == "sqlite":
        url = f"sqlite://{workdir / 'bench.db'}"
    else:
        schema = f"fogbench_{os.getpid()}_{secrets.token_hex(4)}"
        try:
            asyncio.run(_pg(f'CREATE SCHEMA "{schema}"'))
        except Exception as exc:
            results[f"{backend}/error"] = {"error": f"PostgreSQL unreachable: {exc}"}
            for _ in range(1 + len(SATURATION) + len(PACED)):
                progress.step(f"{backend}: skipped")
            return None
        url = f"{_pg_base()}{'&' if '?' in _pg_base() else '?'}schema={schema}"
    try:
        seeded = asyncio.run(_seed(url))
        progress.step(f"{backend}: seeded {NODES} nodes")
        viewer = {"Authorization": f"Bearer {seeded['keys']['viewer']}"}
        operator = {"Authorization": f"Bearer {seeded['keys']['operator']}",
                    "Content-Type": "application/json"}
        dashboard = None
        server = _Server("full", workdir, database=url)
        try:
            sample = workdir / "stats.json"
            if not sample.exists():  # the yardstick serves these very bytes
                fetch = urllib.request.Request(server.url + "/api/dashboard/stats",
                                               headers=viewer)
                with urllib.request.urlopen(fetch, timeout=10) as r:
                    sample.write_bytes(r.read())
            for name in ("stats", "nodes", "write"):
                if name == "stats":
                    figures = _versus_bare(server.url, viewer, yardstick(), seconds, workdir,
                                           rounds=1 if args.quick else RATIO_ROUNDS)
                    dashboard = figures
                elif name == "nodes":
                    figures = _wrk(server.url + "/api/directory/nodes", seconds, workdir)
                else:
                    figures = _wrk(server.url + "/api/directory/nodes", seconds, workdir,
                                   method="POST", headers=operator, body=seeded["write_body"])
                results[f"{backend}/{name}"] = {
                    k: v for k, v in figures.items() if k not in ("rounds", "bare")
                }
                progress.step(f"{backend}: {name} at saturation")
            for name in PACED:
                path = "/api/dashboard/stats" if name == "stats" else "/api/directory/nodes"
                headers = viewer if name == "stats" else {}
                results[f"{backend}/{name}@{rate}rps"] = _paced(
                    server.url + path, rate, seconds, headers
                )
                progress.step(f"{backend}: {name} at {rate} req/s")
        finally:
            server.close()
        server = _Server("full", workdir, database=url, read_cache_ttl=0.0)
        try:
            results[f"{backend}/stats_uncached"] = _wrk(
                server.url + "/api/dashboard/stats", seconds, workdir, headers=viewer
            )
            progress.step(f"{backend}: stats without the read cache")
        finally:
            server.close()
        return dashboard
    finally:
        if schema is not None:
            with contextlib.suppress(Exception):
                asyncio.run(_pg(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


def run(args, progress) -> dict:
    """Run the suite; results by name (see the module docstring)."""
    seconds = _seconds(args)
    rate = _rate()
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="fogcore-bench-api-") as tmp:
        workdir = Path(tmp)
        dashboards = {}
        servers: list[_Server] = []

        def yardstick() -> _Server:
            # The same dashboard JSON from memory, no middleware, no store; started once
            # the first backend has written the body it serves.
            if not servers:
                servers.append(_Server("bare", workdir, body_file=workdir / "stats.json"))
            return servers[0]

        try:
            for backend in _backends():
                dashboards[backend] = _measure_backend(backend, args, progress, workdir,
                                                       results, seconds, rate, yardstick)
            if not servers:
                raise RuntimeError("no backend could be measured")
            bare_runs = [d["bare"] for d in dashboards.values() if d is not None]
            results["bare/stats"] = _median_run(bare_runs)
            progress.step("bare starlette at saturation")
            results[f"bare/stats@{rate}rps"] = _paced(
                servers[0].url + "/api/dashboard/stats", rate, seconds
            )
            progress.step(f"bare starlette at {rate} req/s")
        finally:
            for server in servers:
                server.close()
        for backend, dashboard in dashboards.items():
            if dashboard is not None:
                results[f"{backend}/stats_vs_bare"] = {
                    "ratio": round(dashboard["ops_per_s"] / dashboard["bare"]["ops_per_s"], 3),
                    "target": 0.5,
                    "rounds": dashboard["rounds"],
                }
    results["settings"] = {
        "seconds_per_measurement": seconds,
        "paced_rate": rate,
        "nodes": NODES,
        "wrk_connections": WRK_CONNECTIONS,
        "paced_connections": PACED_CONNECTIONS,
        "server": "uvicorn, 1 worker, uvloop + httptools, access log on (to a file)",
        "rate_limit": "on, set high enough never to refuse the load generator",
        "auth_cache_ttl_s": 2.0,
        "read_cache_ttl_s": 1.0,
    }
    return results


# --------------------------------------------------------------------------- processes


def _serve(ns: argparse.Namespace) -> None:
    import uvicorn

    if ns.app == "bare":
        from starlette.applications import Starlette
        from starlette.responses import Response
        from starlette.routing import Route

        payload = Path(ns.body_file).read_bytes()

        async def stats(request):
            return Response(payload, media_type="application/json")

        async def health(request):
            return Response(b'{"status":"ok"}', media_type="application/json")

        app = Starlette(routes=[Route("/api/dashboard/stats", stats),
                                Route("/health", health)])
    else:
        from fogcore.api import RateLimit, Settings, create_app
        from fogcore.api.logs import configure_logging

        configure_logging("info")  # the access log goes to the server's log file
        overrides = {}
        if ns.read_cache_ttl is not None:
            overrides["read_cache_ttl"] = ns.read_cache_ttl
        settings = Settings(
            database_url=ns.database,
            bench_suites=(),
            bootstrap_admin=False,
            rate_limit=RateLimit(1e9, 10**9),
            **overrides,
        )
        app = create_app(settings)
    from fogcore.api.server import server_options

    # Both apps exactly as `fogcore serve` runs the API.
    uvicorn.run(app, host="127.0.0.1", port=ns.port, loop="uvloop", log_level="warning",
                **server_options(app))


def _main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m fogcore.bench.api")
    sub = parser.add_subparsers(dest="cmd", required=True)
    serve = sub.add_parser("serve")
    serve.add_argument("--app", choices=("full", "bare"), required=True)
    serve.add_argument("--port", type=int, required=True)
    serve.add_argument("--database")
    serve.add_argument("--body-file")
    serve.add_argument("--read-cache-ttl", type=float)
    load = sub.add_parser("load")
    load.add_argument("--url", required=True)
    load.add_argument("--rate", type=int, required=True)
    load.add_argument("--seconds", type=float, required=True)
    load.add_argument("--connections", type=int, default=PACED_CONNECTIONS)
    load.add_argument("--header", action="append", default=[])
    ns = parser.parse_args(argv)
    if ns.cmd == "serve":
        _serve(ns)
        return
    import uvloop

    result = uvloop.run(_paced_load(ns.url, ns.rate, ns.seconds, ns.connections, ns.header))
    print(json.dumps(result))


if __name__ == "__main__":
    _main()
