"""The control panel in real headless Chromium against a real `fogcore serve`: login,
dashboard, wrong password, the Betanet page, a quick benchmark with its progress bar and
chart, keyboard and theme basics; no console errors; a screenshot of every page."""

import re

import pytest

from .conftest import ADMIN, WAIT_MS

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
    assert hop[2] == (shown(peer["ops_per_s"]) if peer else "–")
    workers = table_of("Throughput vs workers")
    if "sphinx.batch.threads1" in results:  # compiled build: the batch entry has threads
        assert set(workers) == {"1", "2"}
        assert workers["2"][0] == shown(results["sphinx.batch.threads2"]["ops_per_s"])
    # The node suite's charts say which suite fills them.
    empty = page.locator(f"{compare} figure p.empty").all_inner_texts()
    assert any("node" in text for text in empty)
    browser.screenshot("benchmarks-core")
    assert browser.unexpected_errors(NO_TESTNET) == []
