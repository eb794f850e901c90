"""One module of routes per area; `all_routes()` gathers them for the app."""

from starlette.routing import Route

__all__ = ["all_routes"]


def all_routes() -> list[Route]:
    """Every route of the API, in the order they are matched."""
    from . import auth, bench, betanet, dashboard, directory, health, keys, panel, vrf

    routes: list[Route] = []
    # The panel comes last: its page route only takes paths no API route has.
    for module in (health, auth, keys, directory, vrf, betanet, bench, dashboard, panel):
        routes += module.ROUTES
    return routes
