"""Benchmark runs: list, start (admin), progress, stop (admin), result."""

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from fogcore.store import BenchRun, Conflict, NotFound

from ..context import audit, context, current_principal
from ..errors import ApiError, JSONResponse
from ..models import BenchQuery, BenchResult, BenchRunList, BenchRunOut, BenchStart
from ..openapi import operation
from ..validation import invalid, read_body, read_query

__all__ = ["ROUTES"]

_RUN_ID = {"run_id": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,64}$"}}


def run_out(run: BenchRun, step: str | None) -> dict:
    """A run as shown to clients; progress as a fraction."""
    if run.status == "done":
        progress = 1.0
    elif run.total:
        progress = min(1.0, run.progress / run.total)
    else:
        progress = 0.0
    return {
        "id": run.id,
        "suite": run.suite,
        "status": run.status,
        "progress": progress,
        "step": step,
        "params": run.params,
        "error": run.error,
        "has_result": run.result is not None,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
    }


def _manager(request: Request):
    bench = context(request).bench
    assert bench is not None
    return bench


async def _get_run(request: Request) -> BenchRun:
    try:
        return await context(request).require_store().bench.get(request.path_params["run_id"])
    except NotFound:
        raise ApiError(404, "not_found", "no such benchmark run") from None


@operation(summary="List benchmark runs, newest first", tag="bench", role="viewer",
           query=BenchQuery, response=BenchRunList)
async def list_runs(request: Request) -> Response:
    query = read_query(request, BenchQuery)
    runs = await context(request).require_store().bench.list(
        status=query.status, suite=query.suite, limit=query.limit, offset=query.offset
    )
    manager = _manager(request)
    return JSONResponse({"runs": [run_out(r, manager.step(r.id)) for r in runs]})


@operation(summary="Start a benchmark run in the background", tag="bench", role="admin",
           body=BenchStart, response=BenchRunOut, status=202, errors=(409,))
async def start_run(request: Request) -> Response:
    principal = current_principal(request)
    spec = await read_body(request, BenchStart)
    manager = _manager(request)
    if spec.suite not in manager.suites:
        raise invalid("suite", f"unknown suite; available: {', '.join(manager.suites)}")
    try:
        run = await manager.start(spec.suite, quick=spec.quick)
    except Conflict:
        raise ApiError(409, "conflict", "a benchmark run is already in progress") from None
    await audit(request, principal.username, "bench.start", target=run.id,
                detail={"suite": spec.suite, "quick": spec.quick})
    return JSONResponse(run_out(run, manager.step(run.id)), status_code=202)


@operation(summary="A benchmark run and its progress", tag="bench", role="viewer",
           response=BenchRunOut, errors=(404,), path_params=_RUN_ID)
async def get_run(request: Request) -> Response:
    run = await _get_run(request)
    return JSONResponse(run_out(run, _manager(request).step(run.id)))


@operation(summary="Stop a running benchmark", tag="bench", role="admin",
           response=BenchRunOut, errors=(404, 409), path_params=_RUN_ID)
async def stop_run(request: Request) -> Response:
    principal = current_principal(request)
    run_id = request.path_params["run_id"]
    try:
        run = await _manager(request).stop(run_id)
    except NotFound:
        raise ApiError(404, "not_found", "no such benchmark run") from None
    except Conflict:
        raise ApiError(409, "conflict", "the run is not running") from None
    await audit(request, principal.username, "bench.stop", target=run_id)
    return JSONResponse(run_out(run, None))


@operation(summary="The result document of a finished run", tag="bench", role="viewer",
           response=BenchResult, errors=(404, 409), path_params=_RUN_ID)
async def get_result(request: Request) -> Response:
    run = await _get_run(request)
    if run.result is None:
        raise ApiError(409, "not_finished", f"the run has no result (status {run.status})")
    return JSONResponse(run.result)


ROUTES = [
    Route("/api/bench/runs", list_runs, methods=["GET"], name="bench_list"),
    Route("/api/bench/runs", start_run, methods=["POST"], name="bench_start"),
    Route("/api/bench/runs/{run_id}", get_run, methods=["GET"], name="bench_get"),
    Route("/api/bench/runs/{run_id}/stop", stop_run, methods=["POST"], name="bench_stop"),
    Route("/api/bench/runs/{run_id}/result", get_result, methods=["GET"], name="bench_result"),
]
