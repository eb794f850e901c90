"""The control panel in real headless Chromium against a real `fogcore serve`: login,
dashboard, wrong password, the Betanet page, a quick benchmark with its progress bar and
chart, keyboard and theme basics; no console errors; a screenshot of every page."""

import asyncio
import concurrent.futures
import re
import time

import pytest

from .conftest import ADMIN, WAIT_MS, svg_text_px

# The Betanet routes answer 404 while no testnet runs: the page shows its empty state.
NO_TESTNET = [(404, "/api/betanet/")]


def test_login_and_dashboard(browser):
    page = browser.page
    browser.goto("/")
    assert page.url.endswith("/login?next=%2Fdashboard")
    browser.screenshot("login")
    browser.login()
    assert page.title() == "Dashboard · fogcore"
    page.wait_for_selector("#stat-health.status-ok", timeout=WAIT_MS)
    assert page.inner_text("#stat-health").startswith("ready")
    assert page.inner_text("#stat-database").strip() == "sqlite"
    # No testnet in this run: the Betanet summary says how to start one.
    assert "fogcore up" in page.inner_text("#betanet-empty")
    assert page.inner_text("#whoami") == f"{ADMIN} (admin)"
    nav = page.locator("nav#nav a")
    assert nav.all_inner_texts() == ["Dashboard", "Betanet", "Benchmarks"]
    assert page.get_attribute('nav#nav a[href="/dashboard"]', "aria-current") == "page"
    # A reload keeps the session (this tab) and lands on the same page.
    browser.goto("/dashboard")
    page.wait_for_selector("#stat-health.status-ok")
    browser.screenshot("dashboard")
    assert browser.unexpected_errors(NO_TESTNET) == []


def test_wrong_password_is_shown_in_words(browser):
    page = browser.page
    browser.goto("/login")
    page.fill("#username", ADMIN)
    page.fill("#password", "not the password at all")
    page.click("button[type=submit]")
    error = page.wait_for_selector("#login-error:not(:empty)")
    assert "Wrong username or password" in error.inner_text()
    assert page.url.endswith("/login")
    assert page.evaluate("document.activeElement.id") == "password"
    browser.screenshot("login-wrong-password")
    assert browser.unexpected_errors([(401, "/api/auth/login")]) == []


def test_betanet_page_without_testnet(browser):
    page = browser.page
    browser.login()
    page.click('nav#nav a[href="/betanet"]')
    browser.wait_ready("/betanet")
    empty = page.wait_for_selector("#betanet-empty")
    assert "fogcore up" in empty.inner_text()
    assert page.title() == "Betanet · fogcore"
    # Client-side navigation moves focus to the main region for screen readers.
    assert page.evaluate("document.activeElement.id") == "main"
    browser.screenshot("betanet")
    # A deep link to a node is served the shell and shows the same empty state.
    browser.goto("/betanet/nodes/" + "ab" * 32, name="/betanet/nodes/{id}")
    page.wait_for_selector("#betanet-empty")
    assert browser.unexpected_errors(NO_TESTNET) == []


def test_quick_benchmark_progress_and_chart(browser):
    page = browser.page
    browser.login()
    browser.goto("/benchmarks")
    page.select_option("#bench-suite", "api")
    assert page.is_checked("#bench-quick")
    page.click("#bench-start")
    bar = page.wait_for_selector("#bench-progress-bar")
    assert bar.get_attribute("max") == "1"
    page.wait_for_function(
        "() => { const b = document.querySelector('#bench-progress-bar');"
        " return b && b.value > 0 && b.value < 1; }", timeout=30_000)
    browser.screenshot("benchmarks-running")
    label = page.inner_text("#bench-progress label")
    assert re.search(r"\(api\): running, \d+ %", label), label
    chart = page.wait_for_selector("#bench-result figure svg.chart", timeout=60_000)
    assert chart.query_selector("title").text_content() == "api: throughput per measure"
    title = page.inner_text("#bench-result figure h3")
    assert title == "api: throughput per measure"
    bars = page.locator("#bench-result figure").first.locator("rect")
    assert bars.count() >= 4
    table = page.locator("#bench-result details.data table").first
    assert "sqlite/stats" in table.text_content()
    runs = page.inner_text("section[aria-labelledby=runs-title] table")
    assert "done" in runs and "api" in runs
    page.wait_for_selector("section[aria-labelledby=compare-title] figure")
    browser.screenshot("benchmarks")
    # The finished run has a page of its own.
    page.click("section[aria-labelledby=runs-title] table a")
    browser.wait_ready()
    page.wait_for_selector("#bench-result figure svg.chart")
    assert browser.unexpected_errors(NO_TESTNET) == []


def test_keyboard_theme_and_unknown_paths(browser):
    page = browser.page
    browser.login()
    # The skip link is the first stop of the tab order and leads to the main region.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Enter")
    assert page.evaluate("location.hash") == "#main"
    # The theme toggle is a real button with a pressed state that persists.
    toggle = page.locator("#theme-toggle")
    before = toggle.get_attribute("aria-pressed")
    toggle.focus()
    page.keyboard.press("Enter")
    after = toggle.get_attribute("aria-pressed")
    assert after != before
    expected = "dark" if after == "true" else "light"
    assert page.get_attribute("html", "data-theme") == expected
    browser.goto("/dashboard")
    assert page.get_attribute("html", "data-theme") == expected
    page.wait_for_selector("#stat-health.status-ok")
    browser.screenshot(f"dashboard-{expected}")
    # A path no page owns is the API's 404, not the shell.
    response = page.request.get(browser.base + "/no/such/page")
    assert response.status == 404 and response.headers["content-type"] == "application/json"
    assert browser.unexpected_errors(NO_TESTNET) == []


@pytest.mark.parametrize("width", [390])
def test_narrow_screen(browser, width):
    page = browser.page
    page.set_viewport_size({"width": width, "height": 844})
    browser.login()
    page.wait_for_selector("#stat-health.status-ok")
    # Nothing wider than the screen: no sideways scrolling of the whole page.
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    browser.screenshot("dashboard-narrow")
    assert browser.unexpected_errors(NO_TESTNET) == []


def test_core_benchmark_comparison_charts(browser):
    """A quick `core` run fills "compiled vs pure Python vs peers" and "throughput vs
    workers" with the figures of its result document."""
    page = browser.page
    browser.login()
    browser.goto("/benchmarks")
    page.select_option("#bench-suite", "core")
    page.click("#bench-start")
    # Earlier tests' runs may be shown until this one is done.
    page.wait_for_selector("#bench-progress label:has-text('(core): done')", timeout=60_000)
    page.wait_for_selector("#bench-result h2:has-text('(core)')")
    page.wait_for_selector("#bench-result figure svg.chart")
    assert page.inner_text("#bench-result figure h3") == "core: throughput per measure"
    run_link = page.locator("section[aria-labelledby=runs-title] table a").first
    run_id = run_link.get_attribute("href").rsplit("/", 1)[1]
    token = page.evaluate("sessionStorage.getItem('fogcore.token')")
    doc = page.request.get(f"{browser.base}/api/bench/runs/{run_id}/result",
                           headers={"Authorization": f"Bearer {token}"}).json()
    results = doc["results"]
    compare = "section[aria-labelledby=compare-title]"
    # The comparisons are redrawn once the finished run is listed.
    page.wait_for_selector(
        f"{compare} figure:has(h3:text-is('Compiled vs pure Python vs peers')) svg.chart")

    def table_of(title: str) -> dict[str, list[str]]:
        figure = page.locator(f"{compare} figure", has=page.locator(f"h3:text-is('{title}')"))
        assert figure.count() == 1, title
        assert figure.locator("svg.chart").count() == 1, f"{title}: no chart drawn"
        return dict(figure.locator("details.data tbody tr").evaluate_all(
            "(rows) => rows.map((r) => [r.cells[0].textContent,"
            " [...r.cells].slice(1).map((c) => c.textContent)])"))

    def shown(value: float) -> str:
        return f"{round(value):,}"

    impl = table_of("Compiled vs pure Python vs peers")
    hop = impl["sphinx: process one hop"]
    assert hop[0] == shown(results["sphinx.process"]["ops_per_s"])
    assert hop[1] == shown(results["sphinx.process.ref"]["ops_per_s"])
    peer = results.get("sphinxmix.process")
    # A peer that was not measured has no series at all (no legend entry without bars).
    assert hop[2:] == ([shown(peer["ops_per_s"])] if peer else [])
    workers = table_of("Throughput vs workers")
    if "sphinx.batch.threads1" in results:  # compiled build: the batch entry has threads
        assert set(workers) == {"1", "2"}
        assert workers["2"][0] == shown(results["sphinx.batch.threads2"]["ops_per_s"])
    # The node suite's charts say which suite fills them.
    empty = page.locator(f"{compare} figure p.empty").all_inner_texts()
    assert any("node" in text for text in empty)
    browser.screenshot("benchmarks-core")
    assert browser.unexpected_errors(NO_TESTNET) == []


def test_axe_on_every_page(browser):
    """axe-core finds no violation on any page of a server without a testnet: the login
    form, the dashboard, the Betanet page's empty state, the benchmarks and a page that
    does not exist, in both themes."""
    page = browser.page
    browser.goto("/login")
    found = {"login": browser.axe("login")}
    browser.login()
    for path in ("/dashboard", "/betanet", "/benchmarks"):
        browser.goto(path)
        page.wait_for_selector("main h1")
        found[path] = browser.axe(path)
    _navigate_in_panel(page, "/betanet/nothing/here")
    browser.wait_ready("/betanet/nothing/here")
    found["not found"] = browser.axe("not found")
    page.click("#theme-toggle")
    browser.goto("/dashboard")
    page.wait_for_selector("#stat-health.status-ok")
    found["/dashboard (other theme)"] = browser.axe("/dashboard (other theme)")
    assert {name: v for name, v in found.items() if v} == {}
    # The check itself works: an input without a label is found.
    page.evaluate("document.querySelector('main').append(document.createElement('input'))")
    assert any(v.startswith("label ") for v in browser.axe("planted violation"))


def _navigate_in_panel(page, path: str) -> None:
    """Go to `path` the way the panel's own links do (History API, no page load)."""
    page.evaluate("(path) => { history.pushState(null, '', path);"
                  " dispatchEvent(new PopStateEvent('popstate')); }", path)


def test_unknown_page_paths_say_not_found(browser):
    """A path below a page that the page does not show is a 404 from the API (loaded
    directly) and "Page not found" in the panel (reached from within), not the page."""
    page = browser.page
    browser.login()
    response = page.request.get(browser.base + "/betanet/nothing/here")
    assert response.status == 404
    assert page.request.get(browser.base + "/betanet/nodes/" + "ab" * 32).status == 200
    assert page.request.get(browser.base + "/benchmarks/runs/r1").status == 200
    for path in ("/betanet/nothing/here", "/benchmarks/runs/x/y", "/dashboard/more"):
        _navigate_in_panel(page, path)
        browser.wait_ready(path)
        assert page.inner_text("main h1") == "Page not found", path
        assert page.title() == "Not found · fogcore"
    assert browser.unexpected_errors(NO_TESTNET) == []


def _seed_runs(database: str) -> dict[str, str]:
    """Three finished api runs written straight into the server's store: one failed with
    a Python traceback, one stopped, one done whose paced case fell far short of its 2,000
    requests/s and whose process ran longer than its measurements."""
    from fogcore.store import open_store

    traceback = "\n".join([
        "Traceback (most recent call last):",
        '  File "/usr/lib/python3/dist-packages/fogcore/bench/api.py", line 84, in _seconds',
        "    return float(os.environ['FOG_BENCH_API_SECONDS'] + 'x' * 200)",
        "ValueError: could not convert string to float: '" + "x" * 300 + "'",
    ])

    async def seed():
        store = await open_store(database)
        try:
            failed = await store.bench.create("api", {"quick": True})
            await store.bench.start(failed.id)
            await store.bench.finish(failed.id, "failed", error="ValueError: could not "
                                     "convert string to float (exit status 1)\n\n" + traceback)
            done = await store.bench.create("api", {"quick": True})
            start = time.time() - 10
            await store.bench.start(done.id, now=start)
            result = {"suite": "api", "machine": {}, "started": start + 1.0,
                      "finished": start + 3.1, "results": {
                          "sqlite/stats": {"ops_per_s": 5200.0, "p50_ms": 1.2, "p99_ms": 4.0},
                          "sqlite/stats@2000rps": {"target_rps": 2000, "achieved_rps": 846.0,
                                                   "p50_ms": 3.0, "p99_ms": 40.0},
                          "replay.check": {"ops_per_s": 2_500_000.0}}}
            await store.bench.finish(done.id, "done", result=result, now=start + 3.8)
            stopped = await store.bench.create("api", {"quick": True})
            await store.bench.start(stopped.id)
            await store.bench.finish(stopped.id, "stopped", error="stopped on request")
            return {"failed": failed.id, "done": done.id, "stopped": stopped.id}
        finally:
            await store.close()

    # Playwright's synchronous API keeps an event loop running in this thread.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, seed()).result(timeout=60)


def test_benchmark_pages_say_things_in_words(browser, server):
    """A failed run says which exception ended it in one line (its output folded away,
    nothing wider than a phone), a run's page says whether it failed or was stopped, a
    paced case short of its target is pointed out, the throughput chart is on a log scale,
    "took" is the run's own time in the table and the result, and no backtick shows."""
    runs = _seed_runs(server.database)
    page = browser.page
    page.set_viewport_size({"width": 390, "height": 844})
    browser.login()
    browser.goto(f"/benchmarks/runs/{runs['failed']}", name="/benchmarks/runs/{failed}")
    failure = page.wait_for_selector("#bench-result #bench-failure")
    first = failure.query_selector("p").inner_text()
    assert first.startswith("The run failed: ValueError: could not convert string to float")
    assert failure.query_selector("details:not([open]) pre.output")
    assert "Traceback" not in failure.inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert "Traceback" not in page.inner_text("section[aria-labelledby=runs-title]")
    assert "`" not in page.inner_text("main")
    # Each suite's past runs on a chart of their own unit; text readable on the phone.
    page.wait_for_selector("#history-charts svg.chart")
    units = {"core": "operations/s", "api": "requests/s", "node": "packets/s"}
    titles = []
    for figure in page.locator("#history-charts figure").all():
        titles.append(figure.locator("h3").inner_text())
        suite = titles[-1].split()[1]
        assert figure.locator("svg.chart > desc").text_content().startswith(units[suite])
    assert any(t.startswith("Past api runs") for t in titles), titles
    assert svg_text_px(page, "svg.chart text") >= 9
    assert browser.axe("/benchmarks/runs/{failed}") == []
    browser.screenshot("benchmarks-failed-run-narrow")
    page.set_viewport_size({"width": 1280, "height": 900})
    browser.goto(f"/benchmarks/runs/{runs['stopped']}", name="/benchmarks/runs/{stopped}")
    stopped = page.wait_for_selector("#bench-result #bench-failure")
    assert stopped.inner_text().startswith("The run was stopped: stopped on request")
    browser.goto(f"/benchmarks/runs/{runs['done']}", name="/benchmarks/runs/{done}")
    page.wait_for_selector("#result-took")
    assert "took 3.8 s" in page.inner_text("#result-took")
    row = page.locator(f"tr:has(a[href='/benchmarks/runs/{runs['done']}'])")
    assert "3.8 s" in row.inner_text()
    short = page.inner_text(".shortfall")
    assert "sqlite/stats@2000rps asked for 2,000 requests/s and reached 846" in short
    chart = page.locator("#bench-result figure", has=page.locator("h3:text-is('api: throughput per measure')"))
    assert "log scale" in chart.inner_text()
    # On the log scale the slowest bar is still a bar, not a sliver under the fastest.
    widths = chart.locator("svg rect").evaluate_all("(r) => r.map((e) => e.getBBox().width)")
    assert min(widths) > max(widths) / 20  # linear: 846 / 2,500,000 of the widest
    assert "`" not in page.inner_text("main")
    assert browser.axe("/benchmarks/runs/{done}") == []
    browser.screenshot("benchmarks-shortfall")
    assert browser.unexpected_errors(NO_TESTNET) == []
