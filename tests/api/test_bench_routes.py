"""Benchmark runs through the API with the real `api` suite in a subprocess: start,
progress while it runs, stop, and a complete run's result. One event loop (the runs are
long); both backends."""

import asyncio

import httpx
import pytest

from fogcore.api import create_app

from .conftest import Api, test_settings

pytestmark = pytest.mark.slow

# Short measurements on SQLite only: the suite's own backends are not what is tested here.
BENCH_ENV = {"FOG_BENCH_API_BACKENDS": "sqlite", "FOG_BENCH_API_SECONDS": "1"}


def run_api(store_url, tmp_path, body, env=BENCH_ENV):
    async def main():
        settings = test_settings(store_url, tmp_path, bench_suites=("api",), bench_env=env)
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
                return await body(Api(app, c))

    return asyncio.run(main())


async def _wait(a, headers, run_id, predicate, timeout=120.0):
    for _ in range(int(timeout / 0.2)):
        run = (await a.client.get(f"/api/bench/runs/{run_id}", headers=headers)).json()
        if predicate(run):
            return run
        await asyncio.sleep(0.2)
    raise AssertionError(f"benchmark run never reached the expected state: {run}")


def test_start_progress_stop(store_url, tmp_path):
    async def body(a):
        admin = await a.headers("admin")
        r = await a.client.post("/api/bench/runs", json={"suite": "nope"}, headers=admin)
        assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "suite"
        r = await a.client.post("/api/bench/runs", json={"suite": "api"}, headers=admin)
        assert r.status_code == 202, r.text
        run = r.json()
        assert run["status"] == "running" and run["params"] == {"quick": True}
        # A second run while one goes on is refused.
        again = await a.client.post("/api/bench/runs", json={"suite": "api"}, headers=admin)
        assert again.status_code == 409
        seen = await _wait(a, admin, run["id"], lambda r: r["progress"] > 0)
        assert seen["step"] and 0 < seen["progress"] < 1
        r = await a.client.post(f"/api/bench/runs/{run['id']}/stop", headers=admin)
        assert r.status_code == 200 and r.json()["status"] == "stopped"
        r = await a.client.get(f"/api/bench/runs/{run['id']}/result", headers=admin)
        assert r.status_code == 409
        r = await a.client.post(f"/api/bench/runs/{run['id']}/stop", headers=admin)
        assert r.status_code == 409
        listed = (await a.client.get("/api/bench/runs", headers=admin)).json()["runs"]
        assert [x["id"] for x in listed] == [run["id"]]
        actions = [e.action for e in await a.store.audit.list()]
        assert "bench.start" in actions and "bench.stop" in actions

    run_api(store_url, tmp_path, body)


def test_complete_run_has_a_result(store_url, tmp_path):
    async def body(a):
        admin = await a.headers("admin")
        viewer = await a.headers("viewer")
        r = await a.client.post("/api/bench/runs", json={"suite": "api"}, headers=admin)
        run = r.json()
        done = await _wait(a, viewer, run["id"], lambda r: r["status"] != "running", 240)
        assert done["status"] == "done", done
        assert done["progress"] == 1.0 and done["has_result"] is True
        result = (await a.client.get(f"/api/bench/runs/{run['id']}/result",
                                     headers=viewer)).json()
        assert result["suite"] == "api"
        stats = result["results"]["sqlite/stats"]
        assert stats["ops_per_s"] > 0 and stats["errors"] == 0
        assert result["results"]["bare/stats"]["ops_per_s"] > 0

    run_api(store_url, tmp_path, body)


def test_failed_run_says_what_failed_in_one_line(store_url, tmp_path):
    """A run whose process dies of an exception reports that exception on the first line of
    `error`, the traceback only after a blank line."""
    async def body(a):
        admin = await a.headers("admin")
        r = await a.client.post("/api/bench/runs", json={"suite": "api"}, headers=admin)
        run = r.json()
        failed = await _wait(a, admin, run["id"], lambda r: r["status"] != "running", 120)
        assert failed["status"] == "failed" and failed["has_result"] is False
        first, _, rest = failed["error"].partition("\n")
        assert first.startswith("ValueError: could not convert string to float")
        assert first.endswith("(exit status 1)")
        assert "File " in rest and rest.rstrip().endswith("'soon'")

    run_api(store_url, tmp_path, body, env={**BENCH_ENV, "FOG_BENCH_API_SECONDS": "soon"})


def test_failure_report_without_traceback():
    from fogcore.api.benchrunner import failure_report

    assert failure_report(2, []) == "exit status 2"
    assert failure_report(1, ["usage: x", "x: error: bad flag"]).startswith(
        "x: error: bad flag (exit status 1)\n\nusage: x")
    assert len(failure_report(1, ["E: " + "x" * 499] * 20)) <= 2000
