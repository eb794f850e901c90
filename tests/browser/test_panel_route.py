"""Serving the panel's files (no browser needed): the shell for `/` and for the router's
pages only, long-cached versioned assets with their content types, revalidation, no
directory listing and no way out of the panel folder."""

import httpx
import pytest

from fogcore.api import Settings, create_app
from fogcore.api.routes.panel import find_panel_dir, load_panel


@pytest.fixture
def client(tmp_path, run):
    settings = Settings(database_url=f"sqlite://{tmp_path / 'panel.db'}", bench_suites=(),
                        bootstrap_admin=False, access_log=False)
    app = create_app(settings)

    async def call(requests):
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://panel") as c:
                return [await c.request(method, path, headers=headers or {})
                        for method, path, headers in requests]

    return lambda *requests: run(call(list(requests)))


def test_panel_folder_found():
    root = find_panel_dir()
    assert root is not None and (root / "index.html").is_file()
    panel = load_panel()
    assert {"dashboard", "betanet", "benchmarks", "login"} <= set(panel.pages)


def test_pages_come_from_the_manifest():
    """The API and the panel's router read the same manifest: each page's path, title and
    module, and the deeper paths it shows; anything deeper is not a page."""
    import json

    root = find_panel_dir()
    manifest = json.loads((root / "pages.json").read_text())
    panel = load_panel()
    assert {p["path"][1:] for p in manifest["pages"]} == set(panel.pages)
    for page in manifest["pages"]:
        assert page["title"] and (root / page["module"]).is_file(), page
    assert panel.owns("/betanet") and panel.owns("/betanet/nodes/ab12")
    assert panel.owns("/benchmarks/runs/r1") and panel.owns("/dashboard/")
    for path in ("/betanet/nothing/here", "/betanet/nodes", "/betanet/nodes/a/b",
                 "/dashboard/x", "/login/x", "/nowhere"):
        assert not panel.owns(path), path


def test_shell_and_pages(client):
    panel = load_panel()
    (index, page, deep, head, nope, api, post, unknown_deep) = client(
        ("GET", "/", None), ("GET", "/betanet", None), ("GET", "/betanet/nodes/abc", None),
        ("HEAD", "/dashboard", None), ("GET", "/no/such/page", None),
        ("GET", "/api/no/such", None), ("POST", "/dashboard", None),
        ("GET", "/betanet/nothing/here", None),
    )
    assert index.status_code == 200
    assert index.headers["content-type"] == "text/html; charset=utf-8"
    assert index.headers["cache-control"] == "no-cache"
    assert "__ASSETS__" not in index.text and f"{panel.asset_prefix}/js/app.js" in index.text
    assert "script-src 'self'" in index.headers["content-security-policy"]
    assert page.text == index.text == deep.text
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == len(index.content)
    for answer in (nope, api, unknown_deep):
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "not_found"
    assert post.status_code == 405 and post.headers["allow"] == "GET, HEAD"


def test_assets(client):
    panel = load_panel()
    prefix = panel.asset_prefix
    (js, css, svg, old, again) = client(
        ("GET", f"{prefix}/js/router.js", None), ("GET", f"{prefix}/css/panel.css", None),
        ("GET", f"{prefix}/favicon.svg", None), ("GET", "/static/0123456789ab/js/api.js", None),
        ("GET", f"{prefix}/js/router.js", None),
    )
    assert js.headers["content-type"] == "text/javascript; charset=utf-8"
    assert js.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert css.headers["content-type"] == "text/css; charset=utf-8"
    assert svg.headers["content-type"] == "image/svg+xml"
    assert svg.headers["x-content-type-options"] == "nosniff"
    # An asset asked for under another version is served but must be revalidated.
    assert old.status_code == 200 and old.headers["cache-control"] == "no-cache"
    (cached,) = client(("GET", f"{prefix}/js/router.js", {"if-none-match": again.headers["etag"]}))
    assert cached.status_code == 304 and cached.content == b""


@pytest.mark.parametrize("path", [
    "/static/{v}/", "/static/{v}/js", "/static/{v}/js/", "/static/{v}/../api/app.py",
    "/static/{v}/..%2f..%2fpyproject.toml", "/static/{v}/js/../../../setup.py",
    "/static/{v}/%2e%2e/%2e%2e/setup.py", "/static/{v}/index.html", "/static/{v}/nope.js",
    "/static/{v}/js/pages", "/..%2fsetup.py", "/betanet/../../setup.py",
])
def test_no_listing_no_traversal(client, path):
    (answer,) = client(("GET", path.format(v=load_panel().version), None))
    assert answer.status_code in (404, 307), path
    assert b"import " not in answer.content and b"setup(" not in answer.content
