"""Fixtures for the browser tests: a real `fogcore serve` in a subprocess (temporary SQLite
database and data directory, an admin made with `fogcore admin create --password-stdin`)
and Debian's headless Chromium driven by Playwright.

Chromium comes from the system (`apt-get install chromium`); Playwright's own browser
download is never used. Without Chromium or Playwright the tests fail with a message
saying what to install, so CI cannot pass by skipping them."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
CHROMIUM = os.environ.get("FOG_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
#: axe-core, fetched from the npm registry at test time (`npm pack`) into this folder.
AXE_CACHE = Path(os.environ.get("FOG_TEST_AXE_DIR",
                                Path.home() / ".cache" / "fogcore-tests" / "axe-core"))
AXE_VERSION = "4"
ADMIN = "admin"
PASSWORD = "browser tests password 1"
#: Each test's own deadline for one wait, in milliseconds.
WAIT_MS = 15_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _fogcore(*args: str) -> list[str]:
    return [sys.executable, "-P", "-m", "fogcore", *args]


@dataclass
class Server:
    """A running `fogcore serve`."""

    url: str
    process: subprocess.Popen
    log: Path
    #: the server's database URL (tests may seed it), when the test made the database
    database: str = ""


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Server:
    """`fogcore serve` on a free loopback port with a fresh SQLite database and an admin."""
    work = tmp_path_factory.mktemp("panel-server")
    database = f"sqlite://{work / 'fogcore.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOG_")}
    env.update({
        "FOG_DATA_DIR": str(work / "data"),
        "FOG_DATABASE_URL": database,
        "FOG_BENCH_DIR": str(work / "bench"),
        # The tests log in once per test; the default login limit is 5 a minute.
        "FOG_API_LOGIN_RATE_LIMIT": "10/50",
        # A quick api run on SQLite only, with one-second measurements, stays near 20 s.
        "FOG_BENCH_API_BACKENDS": "sqlite",
        "FOG_BENCH_API_SECONDS": "1",
    })
    subprocess.run(_fogcore("admin", "create", ADMIN, "--password-stdin",
                            "--database", database),
                   input=PASSWORD + "\n", text=True, env=env, check=True, timeout=60,
                   capture_output=True)
    port = _free_port()
    log = work / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            _fogcore("serve", "--host", "127.0.0.1", "--port", str(port), "--log-level",
                     "warning"),
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url + "/health/ready", timeout=1) as r:
                if r.status == 200:
                    break
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"fogcore serve did not start:\n{log.read_text()[-4000:]}",
                        pytrace=False)
        time.sleep(0.1)
    yield Server(url, process, log, database)
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# Module scope: the sync API keeps an event loop running while it is open, which would
# stop later tests (in other folders) from running their own loops.
@pytest.fixture(scope="module")
def playwright_driver():
    """Playwright's synchronous API (pip package `playwright`)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the browser tests need the `playwright` Python package "
                    "(pip install playwright; never `playwright install`)", pytrace=False)
    if not (shutil.which(CHROMIUM) or Path(CHROMIUM).is_file()):
        pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install -y chromium", pytrace=False)
    with sync_playwright() as driver:
        yield driver


@dataclass
class Browser:
    """One fresh browser profile and page, with everything the page logged."""

    page: object
    base: str
    console_errors: list = field(default_factory=list)
    page_errors: list = field(default_factory=list)
    failed_responses: list = field(default_factory=list)
    load_times: dict = field(default_factory=dict)

    def goto(self, path: str, name: str | None = None) -> None:
        """Open `path` as a fresh page load and record its Navigation Timing (as `name`)."""
        self.page.goto(self.base + path, wait_until="load")
        self.wait_ready()
        self.record_load(name or path)

    def wait_ready(self, path: str | None = None) -> None:
        """Wait until the panel's router has rendered a page (or `path`)."""
        selector = f'html[data-page-ready="{path}"]' if path else "html[data-page-ready]"
        self.page.wait_for_selector(selector, state="attached", timeout=WAIT_MS)

    def record_load(self, name: str) -> dict:
        """Navigation Timing of the current document plus the time to the first rendered
        page, in milliseconds."""
        timing = self.page.evaluate("""() => {
            const [nav] = performance.getEntriesByType("navigation");
            const ready = performance.getEntriesByType("mark")
                .filter((m) => m.name.startsWith("page-ready"));
            return {
                ttfb_ms: nav.responseStart - nav.startTime,
                dom_content_loaded_ms: nav.domContentLoadedEventEnd - nav.startTime,
                load_ms: nav.loadEventEnd - nav.startTime,
                page_ready_ms: ready.length ? ready[ready.length - 1].startTime : null,
                transfer_bytes: nav.transferSize,
            };
        }""")
        self.load_times[name] = timing
        return timing

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def axe(self, name: str) -> list[str]:
        """axe-core's violations on the current page, recorded under `name` for the
        summary at the end of the run."""
        violations = axe_violations(self.page)
        AXE_RESULTS[name] = len(violations)
        return violations

    def login(self, username: str = ADMIN, password: str = PASSWORD) -> None:
        self.goto("/login")
        self.page.fill("#username", username)
        self.page.fill("#password", password)
        self.page.click("button[type=submit]")
        self.wait_ready("/dashboard")

    def unexpected_errors(self, allowed=()) -> list[str]:
        """Console errors and uncaught exceptions, minus the failed loads in `allowed`
        ((status, path prefix) pairs the test caused on purpose)."""
        found = [f"page error: {e}" for e in self.page_errors]
        expected = {(status, prefix) for status, prefix in allowed}
        for text, url in self.console_errors:
            if text.startswith("Failed to load resource") and any(
                f"status of {status}" in text and url.startswith(self.base + prefix)
                for status, prefix in expected
            ):
                continue
            found.append(f"console: {text} ({url})")
        return found


_axe_source: str | None = None


def axe_source() -> str:
    """The text of axe-core's `axe.min.js`: from the cache folder, else fetched once with
    `npm pack axe-core@4` (the npm registry) and unpacked there. Fails, never skips, when
    npm is missing: the accessibility checks are part of the suite."""
    global _axe_source
    if _axe_source is not None:
        return _axe_source
    script = AXE_CACHE / "package" / "axe.min.js"
    if not script.is_file():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("the browser tests need npm to fetch axe-core from the npm registry: "
                        "apt-get install -y npm", pytrace=False)
        AXE_CACHE.mkdir(parents=True, exist_ok=True)
        packed = subprocess.run([npm, "pack", f"axe-core@{AXE_VERSION}", "--silent",
                                 "--pack-destination", str(AXE_CACHE)],
                                capture_output=True, text=True, timeout=180)
        if packed.returncode != 0:
            pytest.fail(f"npm pack axe-core@{AXE_VERSION} failed:\n{packed.stderr[-2000:]}",
                        pytrace=False)
        import tarfile

        tarball = AXE_CACHE / packed.stdout.strip().splitlines()[-1]
        with tarfile.open(tarball) as archive:
            member = archive.extractfile("package/axe.min.js")
            if member is None:
                pytest.fail(f"{tarball.name} holds no package/axe.min.js", pytrace=False)
            script.parent.mkdir(parents=True, exist_ok=True)
            script.write_bytes(member.read())
        tarball.unlink()
    _axe_source = script.read_text()
    return _axe_source


def axe_violations(page) -> list[str]:
    """axe-core's violations on the page as it is now, one line each (rule, impact, what
    it asks, the elements). The script is evaluated over the DevTools protocol, which the
    page's Content Security Policy (`script-src 'self'`) does not govern; the panel itself
    keeps running under that policy."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(axe_source() + "\n;undefined")
    found = page.evaluate("""async () => {
        const result = await window.axe.run(document, { resultTypes: ["violations"] });
        return result.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
            targets: v.nodes.map((n) => n.target.join(" ")) }));
    }""")
    return [f"{v['id']} ({v['impact']}): {v['help']}: {len(v['targets'])} elements, e.g. "
            f"{', '.join(v['targets'][:3])}" for v in found]


def svg_text_px(page, selector: str) -> float:
    """The smallest text size on screen, in CSS pixels, of the SVG text under `selector`
    (its font size times its drawing's scale)."""
    return page.evaluate("""(selector) => Math.min(...[...document.querySelectorAll(selector)]
        .map((t) => { const svg = t.ownerSVGElement;
            const scale = svg.getBoundingClientRect().width / svg.viewBox.baseVal.width;
            return parseFloat(getComputedStyle(t).fontSize) * scale; }))""", selector)


LOAD_TIMES: dict[str, dict] = {}
AXE_RESULTS: dict[str, int] = {}


@pytest.fixture
def browser(playwright_driver, server, tmp_path) -> Browser:
    """A fresh Chromium profile (its own --user-data-dir) on the running server."""
    context = playwright_driver.chromium.launch_persistent_context(
        str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True,
        args=[flag for flag in CHROMIUM_FLAGS if flag != "--headless"],
        viewport={"width": 1280, "height": 900}, timeout=30_000,
    )
    page = context.pages[0] if context.pages else context.new_page()
    page.set_default_timeout(WAIT_MS)
    b = Browser(page, server.url)
    page.on("console", lambda m: m.type == "error" and b.console_errors.append(
        (m.text, (m.location or {}).get("url", ""))))
    page.on("pageerror", lambda e: b.page_errors.append(str(e)))
    page.on("response", lambda r: r.status >= 400 and b.failed_responses.append(
        (r.status, r.url)))
    try:
        yield b
    finally:
        LOAD_TIMES.update(b.load_times)
        context.close()


def pytest_terminal_summary(terminalreporter):
    """Print the page load times measured in the browser (reported, never asserted) and
    axe-core's violation count per page checked."""
    if AXE_RESULTS:
        terminalreporter.section("axe-core violations per page")
        for name, count in sorted(AXE_RESULTS.items()):
            terminalreporter.write_line(f"{name:40s} {count}")
    if not LOAD_TIMES:
        return
    terminalreporter.section("panel page load times (Navigation Timing, ms)")
    for name, t in sorted(LOAD_TIMES.items()):
        ready = t["page_ready_ms"]
        terminalreporter.write_line(
            f"{name:28s} ttfb {t['ttfb_ms']:7.1f}  DOMContentLoaded "
            f"{t['dom_content_loaded_ms']:7.1f}  load {t['load_ms']:7.1f}  page ready "
            f"{ready if ready is None else round(ready, 1)!s:>7}"
        )
    ARTIFACTS.mkdir(exist_ok=True)
    import json

    (ARTIFACTS / "panel-load-times.json").write_text(json.dumps(LOAD_TIMES, indent=2) + "\n")
