"""The control panel's static files, served at `/`.

Files are read once into memory from the panel folder (`find_panel_dir`); a request can
only ever name one of those files, so path traversal and directory listings cannot happen.
Assets are served under `/static/<version>/...`, where the version is a hash of the whole
panel: their URLs change whenever any file changes, so they can be cached for a year.
`index.html` (never cached) is the shell for `/` and for every page path the panel's own
router owns: the `path` of every entry of the manifest `pages.json` (which the panel's
`js/nav.js` reads too). Other unknown paths stay 404s.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Route
from starlette.types import Receive, Scope, Send

__all__ = ["ROUTES", "PanelFiles", "find_panel_dir", "load_panel"]

#: Placeholder in index.html replaced by the asset URL prefix (`/static/<version>`).
ASSET_PLACEHOLDER = "__ASSETS__"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
}

_LONG_CACHE = "public, max-age=31536000, immutable"
# The shell and assets asked for under an old version must be revalidated every time.
_NO_CACHE = "no-cache"
#: The panel's page manifest: `{"home": ..., "pages": [{"path", "title", "module"}, ...]}`.
MANIFEST = "pages.json"


def find_panel_dir() -> Path | None:
    """The folder holding the panel's files: the installed `fogcore.panel` package data
    when present, else the source tree's `panel/` folder beside `api/`."""
    spec = importlib.util.find_spec("fogcore.panel")
    if spec is not None:
        for location in spec.submodule_search_locations or ():
            if (Path(location) / "index.html").is_file():
                return Path(location)
    source = Path(__file__).resolve().parent.parent.parent / "panel"
    if (source / "index.html").is_file():
        return source
    return None


@dataclass(frozen=True)
class _File:
    body: bytes
    content_type: str
    etag: str


class PanelFiles:
    """Every servable file of the panel, in memory, keyed by its relative POSIX path."""

    def __init__(self, root: Path) -> None:
        files: dict[str, _File] = {}
        digest = hashlib.sha256()
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root)
            # Hidden files and Python leftovers are not part of the panel.
            if not path.is_file() or any(part.startswith((".", "__")) for part in relative.parts):
                continue
            content_type = CONTENT_TYPES.get(path.suffix.lower())
            if content_type is None:
                continue
            body = path.read_bytes()
            name = relative.as_posix()
            digest.update(name.encode() + b"\0" + hashlib.sha256(body).digest())
            files[name] = _File(body, content_type, f'"{hashlib.sha256(body).hexdigest()[:20]}"')
        if "index.html" not in files:
            raise FileNotFoundError(f"no index.html in {root}")
        self.version = digest.hexdigest()[:12]
        self.asset_prefix = f"/static/{self.version}"
        shell = files.pop("index.html").body.replace(
            ASSET_PLACEHOLDER.encode(), self.asset_prefix.encode()
        )
        self.index = _File(shell, CONTENT_TYPES[".html"],
                           f'"{hashlib.sha256(shell).hexdigest()[:20]}"')
        self.files = files
        #: Page path -> the deeper paths it shows, as segment tuples ("*": any one).
        self.pages: dict[str, tuple[tuple[str, ...], ...]] = _read_manifest(files)

    def owns(self, path: str) -> bool:
        """Whether `path` is a page of the panel (served the shell): a page path of the
        manifest, or one of that page's subpaths."""
        segments = [s for s in path.split("/") if s]
        if not segments:
            return True
        subpaths = self.pages.get(segments[0])
        if subpaths is None:
            return False
        rest = segments[1:]
        return not rest or any(
            len(pattern) == len(rest)
            and all(part in ("*", got) for part, got in zip(pattern, rest, strict=True))
            for pattern in subpaths
        )


def _read_manifest(files: dict[str, _File]) -> dict[str, tuple[tuple[str, ...], ...]]:
    """Page name (first path segment) -> its subpaths as segment tuples, from the
    manifest. A missing or malformed manifest is an error at start-up, not a panel that
    silently serves no page."""
    manifest = files.get(MANIFEST)
    if manifest is None:
        raise FileNotFoundError(f"the panel has no {MANIFEST}")
    try:
        pages = {page["path"]: page.get("subpaths", []) for page in json.loads(manifest.body)["pages"]}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{MANIFEST}: expected {{'pages': [{{'path': ...}}, ...]}}: {exc}") from None
    owned: dict[str, tuple[tuple[str, ...], ...]] = {}
    for path, subpaths in pages.items():
        if not (isinstance(path, str) and path.count("/") == 1 and path.startswith("/")
                and "." not in path and isinstance(subpaths, list)):
            raise ValueError(f"{MANIFEST}: a page path is one segment without a dot: {path!r}")
        owned[path[1:]] = tuple(tuple(s for s in str(sub).split("/") if s) for sub in subpaths)
    return owned


_loaded: PanelFiles | None = None


def load_panel() -> PanelFiles | None:
    """The panel's files, read on first use; None when the panel is not installed."""
    global _loaded
    if _loaded is None:
        root = find_panel_dir()
        if root is None:
            return None
        _loaded = PanelFiles(root)
    return _loaded


def _respond(request: Request, file: _File, cache: str) -> Response:
    headers = {"cache-control": cache, "etag": file.etag}
    if file.etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    body = b"" if request.method == "HEAD" else file.body
    response = Response(body, media_type=file.content_type, headers=headers)
    if request.method == "HEAD":
        response.headers["content-length"] = str(len(file.body))
    return response


def _not_found() -> HTTPException:
    return HTTPException(404)


async def shell(request: Request) -> Response:
    """index.html, with asset URLs of the current version."""
    panel = load_panel()
    if panel is None:
        raise _not_found()
    return _respond(request, panel.index, _NO_CACHE)


async def asset(request: Request) -> Response:
    """A CSS, JavaScript or image file of the panel."""
    panel = load_panel()
    name = str(PurePosixPath(request.path_params["asset"]))
    file = panel.files.get(name) if panel is not None else None
    if file is None:
        raise _not_found()
    current = request.path_params["version"] == panel.version
    return _respond(request, file, _LONG_CACHE if current else _NO_CACHE)


class PageRoute(BaseRoute):
    """Matches only the page paths the panel's router owns, so every other unknown path
    still ends as an unmatched 404 (and is counted as such in the metrics)."""

    #: The template the metrics record for these requests.
    path = "/{page}"
    name = "panel_page"

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        path = scope["path"]
        if path == "/" or path.startswith(("/api/", "/static/")) or "." in path:
            return Match.NONE, {}
        panel = load_panel()
        if panel is None or not panel.owns(path):
            return Match.NONE, {}
        child = {"endpoint": shell, "path_params": {}}
        if scope["method"] in ("GET", "HEAD"):
            return Match.FULL, child
        return Match.PARTIAL, child

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            raise HTTPException(405, headers={"Allow": "GET, HEAD"})
        response = await shell(Request(scope, receive))
        await response(scope, receive, send)

    def url_path_for(self, name: str, /, **path_params):  # pragma: no cover - not named
        from starlette.routing import NoMatchFound

        raise NoMatchFound(name, path_params)


ROUTES = [
    Route("/", shell, methods=["GET", "HEAD"], name="panel_index"),
    Route("/static/{version}/{asset:path}", asset, methods=["GET", "HEAD"], name="panel_asset"),
    PageRoute(),
]
