"""The Betanet pages in real headless Chromium against a real local testnet: `fogcore up`
with six mix nodes and a gateway in a subprocess, carrying loop traffic from `fogcore
ping`. Every node of the testnet in the graph and the table, a node's live charts and its
published VRF epoch proofs, the "audit a delay" form with a delay computed here from the
published proof (valid) and a wrong one (not valid), deploying a node and stopping it,
timers stopped when leaving the page; no console errors, a screenshot of every page."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from fogcore import delays
from fogcore.mixnet.descriptor import decode_descriptor
from fogcore.mixnet.testnet import STATE_FILE

from .conftest import WAIT_MS, Server, svg_text_px

MIX_NODES = 6
GATEWAYS = 1
MEAN_DELAY_MS = 10.0
# `fogcore up` bounds each delay at 50 mean delays (at least 100 ms).
MAX_DELAY_MS = max(100.0, 50 * MEAN_DELAY_MS)
START_TIMEOUT_S = 45


def _fogcore(*args: str) -> list[str]:
    return [sys.executable, "-P", "-m", "fogcore", *args]


@dataclass
class RunningTestnet(Server):
    """A running `fogcore up`: its API URL (from the state file), the admin it printed
    the password of, and its data directory."""

    username: str = ""
    password: str = ""
    data: Path | None = None
    _token: str | None = None

    def call(self, path: str, method: str = "GET", body=None):
        """The API as a plain client, logged in as the same admin."""
        if self._token is None:
            self._token = self._request("/api/auth/login", "POST", {
                "username": self.username, "password": self.password})["token"]
        return self._request(path, method, body, self._token)

    def _request(self, path, method, body, token=None):
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(self.url + path, data, headers, method=method)
        with urllib.request.urlopen(request, timeout=10) as response:
            raw = response.read()
        return json.loads(raw) if raw else None


def _wait_started(process, out: Path, err: Path, data: Path) -> tuple[str, str, str]:
    """The API URL from the state file and the login `fogcore up` printed on stdout."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        text = out.read_text() if out.exists() else ""
        if "stop: Ctrl-C" in text and (data / STATE_FILE).exists():
            break
        if process.poll() is not None or time.monotonic() > deadline:
            if process.poll() is None:
                process.kill()
                process.wait()
            pytest.fail(f"fogcore up did not start:\n{text}\n{err.read_text()[-4000:]}",
                        pytrace=False)
        time.sleep(0.1)
    state = json.loads((data / STATE_FILE).read_text())
    login = re.search(r"log in as '([^']+)' with password '([^']+)'", text)
    assert login, f"fogcore up printed no password for a fresh store:\n{text}"
    return state["api"], login.group(1), login.group(2)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`fogcore up` in a fresh data directory on a free port, with loop traffic running;
    stopped with SIGINT afterwards, which must end it cleanly."""
    work = tmp_path_factory.mktemp("testnet")
    data = work / "testnet"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOG_")}
    env.update({
        "FOG_DATA_DIR": str(work / "data"),
        # Each test logs in once; the default login limit is 5 a minute.
        "FOG_API_LOGIN_RATE_LIMIT": "10/50",
    })
    out, err = work / "up.out", work / "up.err"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        process = subprocess.Popen(
            _fogcore("up", "--nodes", str(MIX_NODES), "--gateways", str(GATEWAYS),
                     "--port", "0", "--mean-delay-ms", str(MEAN_DELAY_MS), "--data",
                     str(data)),
            env=env, stdout=stdout, stderr=stderr)
    url, username, password = _wait_started(process, out, err, data)
    # Loop messages through real routes, so that nodes, links and charts have traffic.
    with open(work / "ping.out", "wb") as ping_out:
        ping = subprocess.Popen(
            _fogcore("ping", "--count", "900", "--interval", "0.1", "--timeout", "2",
                     "--data", str(data)),
            env=env, stdout=ping_out, stderr=subprocess.STDOUT)
    try:
        yield RunningTestnet(url, process, out, username=username, password=password, data=data)
    finally:
        ping.terminate()
        try:
            ping.wait(timeout=10)
        except subprocess.TimeoutExpired:
            ping.kill()
            ping.wait()
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            pytest.fail("fogcore up did not stop within 30 s of SIGINT", pytrace=False)
    assert code == 0, f"fogcore up exited with {code}:\n{err.read_text()[-4000:]}"
    assert "testnet stopped" in out.read_text()
    assert not (data / STATE_FILE).exists(), "the state file outlived the testnet"


def _login(browser, testnet) -> None:
    browser.login(testnet.username, testnet.password)


def _graph_ids(page) -> set[str]:
    return set(page.eval_on_selector_all(
        "svg.graph a.node", "(nodes) => nodes.map((n) => n.dataset.nodeId)"))


def _wait_graph(page, count: int) -> None:
    page.wait_for_function(
        "(n) => document.querySelectorAll('svg.graph a.node').length === n", arg=count,
        timeout=WAIT_MS)


def test_every_node_in_graph_and_table(browser, server):
    page = browser.page
    _login(browser, server)
    # The dashboard's Betanet summary counts the testnet's nodes.
    status = server.call("/api/betanet/status")
    total = MIX_NODES + GATEWAYS
    assert len(status["nodes"]) == total
    page.wait_for_selector("#stat-nodes-up")
    assert page.inner_text("#stat-nodes-up") == f"{total} / {total}"
    browser.screenshot("testnet-dashboard")
    browser.goto("/betanet", name="testnet /betanet")
    _wait_graph(page, total)
    assert _graph_ids(page) == {n["node_id"] for n in status["nodes"]}
    # Columns in path order, each labelled with its count.
    labels = page.eval_on_selector_all("svg.graph text.layer-label", "(t) => t.map((e) => e.textContent)")
    assert labels == [f"{layer} ({count})" for layer, count in status["layers"].items() if count]
    # The table: one row per node, each linking to the node's page, with its layer.
    rows = page.locator("#nodes-table tbody tr")
    assert rows.count() == total
    for node in status["nodes"]:
        row = page.locator(f'#nodes-table tbody tr[data-node-id="{node["node_id"]}"]')
        assert row.count() == 1
        assert node["layer"] in row.inner_text() and node["address"] in row.inner_text()
    # The traffic from `fogcore ping` shows as links between layers.
    # "attached", not "visible": a horizontal SVG line has an empty bounding box, which
    # Playwright counts as hidden whatever its stroke.
    page.wait_for_selector("svg.graph line.link", state="attached", timeout=WAIT_MS)
    # Every graph node is a focusable link with a spoken label.
    label = page.get_attribute("svg.graph a.node", "aria-label")
    assert re.match(r"(entry|mix|exit|gateway) node [0-9a-f]{8}, up, ", label), label
    browser.screenshot("testnet-betanet")
    assert browser.axe("testnet /betanet") == []
    assert browser.unexpected_errors() == []


def _altered_status(page, alter) -> None:
    """Serve the panel the real `GET /api/betanet/status` changed by `alter(status)`: the
    states and idle nodes a test needs, without breaking the testnet."""
    def handle(route):
        response = route.fetch()
        body = response.json()
        alter(body)
        route.fulfill(response=response, json=body)

    page.route("**/api/betanet/status", handle)


def test_dashboard_with_a_testnet(browser, server):
    """The dashboard draws the last hour at once (kept by the API), never says "null",
    warns when nodes are not up (naming their state in words) and does not poll while
    its tab is hidden."""
    page = browser.page
    deadline = time.monotonic() + 30
    while len(server.call("/api/dashboard/throughput")["points"]) < 2:
        assert time.monotonic() < deadline, "the API kept no throughput history"
        time.sleep(0.5)
    _login(browser, server)
    page.wait_for_selector("#throughput-chart svg.chart")
    rows = page.locator("#throughput-chart details tbody tr").count()
    assert rows >= 2, "the chart started from one point"
    assert "null" not in page.inner_text("#main")
    assert page.locator("#drops-by-reason").count() == 1
    assert page.locator("#nodes-warning").count() == 0
    # From here the page's timers run on a fake clock: the dashboard is opened again.
    page.clock.install()
    page.click('nav#nav a[href="/benchmarks"]')
    browser.wait_ready("/benchmarks")
    page.click('nav#nav a[href="/dashboard"]')
    browser.wait_ready("/dashboard")
    page.wait_for_selector("#throughput-chart svg.chart")
    # A hidden tab does not poll; shown again, it refreshes at once.
    polls = []
    page.on("request", lambda r: r.url.endswith("/api/betanet/status") and polls.append(1))
    page.evaluate("Object.defineProperty(document, 'hidden', {value: true, configurable: true});"
                  " document.dispatchEvent(new Event('visibilitychange'))")
    page.clock.run_for(10_000)
    assert polls == []
    page.evaluate("Object.defineProperty(document, 'hidden', {value: false, configurable: true});"
                  " document.dispatchEvent(new Event('visibilitychange'))")
    deadline = time.monotonic() + 10
    while not polls and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert polls, "shown again, the dashboard did not refresh"
    assert browser.axe("testnet /dashboard") == []

    # Two nodes not up: the count is marked and the states are said in words.
    def two_not_up(status):
        status["nodes"][0]["state"] = "unreachable"
        status["nodes"][1]["state"] = "draining"

    _altered_status(page, two_not_up)
    page.clock.run_for(3_500)
    warning = page.wait_for_selector("#nodes-warning")
    total = MIX_NODES + GATEWAYS
    assert warning.inner_text().startswith(f"2 of {total} nodes not up")
    assert "unreachable" in warning.inner_text() and "draining" in warning.inner_text()
    assert "stat-warn" in page.get_attribute("#stat-nodes-up >> xpath=..", "class")
    assert page.inner_text("#stat-nodes-up") == f"{total - 2} / {total}"
    browser.screenshot("testnet-dashboard-warning")
    assert browser.axe("testnet /dashboard (warning)") == []
    assert browser.unexpected_errors() == []


def test_betanet_states_links_and_idle_nodes(browser, server):
    """Idle nodes show no latency ("—", not 0 ms), links to a dead node are not drawn,
    only links with packets are counted, states are words, and on a phone the table
    shows each node's state and Stop button and every drawing's text stays readable."""
    page = browser.page
    status = server.call("/api/betanet/status")
    dead, idle = status["nodes"][0]["node_id"], status["nodes"][1]["node_id"]

    def alter(body):
        for node in body["nodes"]:
            if node["node_id"] == dead:
                node["state"] = "down"
            if node["node_id"] == idle:
                node.update(packets_in_per_s=0, packets_out_per_s=0, latency_p50_ms=0,
                            latency_p99_ms=0)
        body["links"] = [{"from": a, "to": b, "packets_per_s": rate} for a, b, rate in (
            (idle, dead, 5.0), (status["nodes"][2]["node_id"], status["nodes"][3]["node_id"], 0.0),
            (status["nodes"][2]["node_id"], idle, 3.0))]

    _altered_status(page, alter)
    page.set_viewport_size({"width": 390, "height": 844})
    _login(browser, server)
    browser.goto("/betanet", name="testnet /betanet (phone)")
    _wait_graph(page, len(status["nodes"]))
    lines = page.eval_on_selector_all("svg.graph line.link",
                                      "(l) => l.map((e) => [e.dataset.from, e.dataset.to])")
    assert lines == [[status["nodes"][2]["node_id"], idle]]
    assert "1 link carrying packets" in page.inner_text("#topology-summary")
    assert "1 down" in page.inner_text("#topology-summary")
    row = page.locator(f'#nodes-table tbody tr[data-node-id="{idle}"]')
    cells = row.locator("td").all_inner_texts()
    assert cells[-3:-1] == ["—", "—"], cells
    assert page.locator(f'#nodes-table tr[data-node-id="{dead}"] .status-bad').inner_text() == "down"
    # The state and the Stop button are on screen without scrolling the table.
    for selector in ("#nodes-table thead th:text-is('State')",
                     f"#nodes-table button[data-stop='{idle}']"):
        box = page.locator(selector).bounding_box()
        assert box and box["x"] + box["width"] <= 390, (selector, box)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert svg_text_px(page, "svg.graph text") >= 9
    browser.screenshot("testnet-betanet-phone")
    assert browser.axe("testnet /betanet (phone)") == []
    browser.goto(f"/betanet/nodes/{status['nodes'][2]['node_id']}",
                 name="testnet /betanet/nodes/{id} (phone)")
    page.wait_for_selector("#node-charts svg.chart")
    assert svg_text_px(page, "#node-charts svg.chart text") >= 9
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    browser.screenshot("testnet-node-phone")
    assert browser.unexpected_errors() == []


def test_node_page_charts_proofs_and_audit(browser, server):
    page = browser.page
    _login(browser, server)
    status = server.call("/api/betanet/status")
    # The busiest entry node: its charts have something to show.
    entry = max((n for n in status["nodes"] if n["layer"] == "entry"),
                key=lambda n: n["packets_in_per_s"])
    node_id = entry["node_id"]
    browser.goto("/betanet", name="testnet /betanet")
    page.click(f'svg.graph a.node[data-node-id="{node_id}"]')
    browser.wait_ready(f"/betanet/nodes/{node_id}")
    assert page.evaluate("document.activeElement.id") == "main"
    page.wait_for_selector("#node-title")
    assert node_id[:16] in page.inner_text("#node-title")

    # Live charts: the throughput chart's data table gains rows as the node reports.
    def history_rows() -> int:
        return page.locator("#node-charts figure").first.locator("details tbody tr").count()

    page.wait_for_selector("#node-charts figure svg.chart")
    first = history_rows()
    page.wait_for_function(
        "(n) => document.querySelector('#node-charts figure details tbody')"
        ".rows.length > n", arg=first, timeout=WAIT_MS)
    titles = page.eval_on_selector_all("#node-charts svg.chart > title", "(t) => t.map((e) => e.textContent)")
    # One unit per chart: drops per second and queue depth each have their own.
    assert titles == ["Throughput", "Latency", "Drops", "Queue depth"]
    # "out" is dashed and drawn over "in", which shows through where the two are equal.
    paths = page.locator("#node-charts figure").first.locator("svg path.line").evaluate_all(
        "(p) => p.map((e) => e.getAttribute('class'))")
    assert paths == ["line s0", "line s1 dashed"], paths
    # Some reported interval carried packets.
    rates = page.eval_on_selector_all(
        "#node-charts .grid > div:first-child details tbody tr td:nth-child(2)",
        "(cells) => cells.map((c) => Number(c.textContent.replace(/,/g, '')))")
    assert max(rates) > 0, rates

    # VRF proofs: the node publishes one after each 10 s epoch.
    page.wait_for_selector("#vrf-proofs tbody tr", timeout=25_000)
    epoch = int(page.locator("#vrf-proofs tbody tr").first.locator("td").first.inner_text())
    proof = server.call(f"/api/betanet/vrf/{node_id}/{epoch}")
    tag = os.urandom(32)
    mean_us, max_us = int(MEAN_DELAY_MS * 1000), int(MAX_DELAY_MS * 1000)
    # The node's VRF key is in its signed descriptor: verify the proof and derive the
    # delay here.
    listed = server.call("/api/directory/nodes?state=all&limit=1000")["nodes"]
    entry = next(n for n in listed if n["node_id"] == node_id)
    vrf_key = decode_descriptor(bytes.fromhex(entry["descriptor"])).vrf_key
    expected = delays.expected_delay_us(vrf_key, epoch,
                                        bytes.fromhex(proof["proof"]), tag, mean_us, max_us)
    page.select_option("#audit-epoch", str(epoch))
    page.fill("#audit-tag", tag.hex())
    page.fill("#audit-delay", str(expected))
    # The node's delay parameters come filled in from its details.
    detail = server.call(f"/api/betanet/nodes/{node_id}")
    assert (detail["delay_mean_us"], detail["delay_max_us"]) == (mean_us, max_us)
    assert all(p["published_at"] > 0 for p in detail["vrf"])
    assert page.input_value("#audit-mean") == str(mean_us)
    assert page.input_value("#audit-max") == str(max_us)
    # Refreshes of the page keep the form, its input and the keyboard focus.
    page.focus("#audit-max")
    time.sleep(2.5)
    assert page.evaluate("document.activeElement.id") == "audit-max"
    assert page.input_value("#audit-tag") == tag.hex()
    page.keyboard.press("Enter")
    page.wait_for_selector("#audit-result.status-ok")
    assert page.inner_text("#audit-result").startswith("Valid")
    browser.screenshot("testnet-node")
    page.fill("#audit-delay", str(expected + 1))
    page.click("#audit-form button[type=submit]")
    page.wait_for_selector("#audit-result.status-bad")
    assert page.inner_text("#audit-result").startswith("Not valid")
    browser.screenshot("testnet-node-audit-invalid")
    assert browser.axe("testnet /betanet/nodes/{id}") == []

    # The form checks its input itself and says what is wrong; no stale result stays.
    page.fill("#audit-mean", str(max_us + 1))
    page.click("#audit-form button[type=submit]")
    page.wait_for_selector("#audit-error:has-text('cannot exceed the maximum')")
    assert page.inner_text("#audit-result") == ""
    assert page.get_attribute("#audit-mean", "aria-invalid") == "true"
    page.fill("#audit-mean", str(mean_us))
    page.fill("#audit-delay", str(max_us * 1000))
    page.click("#audit-form button[type=submit]")
    page.wait_for_selector("#audit-error:has-text('above the maximum delay')")
    assert page.inner_text("#audit-result") == ""
    assert page.evaluate("document.activeElement.id") == "audit-delay"
    browser.screenshot("testnet-node-audit-checked")
    assert browser.axe("testnet /betanet/nodes/{id} (form errors)") == []

    # The epoch list follows the published proofs (one per 10 s epoch), and says so.
    options = page.locator("#audit-epoch option").count()
    page.wait_for_function("(n) => document.querySelectorAll('#audit-epoch option').length > n",
                           arg=options, timeout=25_000)
    assert "an epoch lasts 10 s" in page.inner_text("#audit-epoch-help")

    # Leaving the page stops its timers: no more requests for the node's details.
    asked = []
    page.on("request", lambda r: "/api/betanet/nodes/" in r.url and asked.append(r.url))
    page.click('nav#nav a[href="/dashboard"]')
    browser.wait_ready("/dashboard")
    asked.clear()
    time.sleep(4.5)
    assert asked == []
    assert browser.unexpected_errors() == []


def test_deploy_and_stop_a_node(browser, server):
    page = browser.page
    _login(browser, server)
    before = {n["node_id"] for n in server.call("/api/betanet/status")["nodes"]}
    browser.goto("/betanet", name="testnet /betanet")
    _wait_graph(page, len(before))
    page.select_option("#deploy-layer", "mix")
    page.select_option("#deploy-format", "sphinx")
    page.click("#deploy-form button[type=submit]")
    _wait_graph(page, len(before) + 1)
    added = _graph_ids(page) - before
    assert len(added) == 1
    new_id = added.pop()
    api_ids = {n["node_id"] for n in server.call("/api/betanet/status")["nodes"]}
    assert api_ids == before | {new_id}
    node = page.locator(f'svg.graph a.node[data-node-id="{new_id}"]')
    assert node.get_attribute("aria-label").startswith(f"mix node {new_id[:8]}")
    assert "Deployed mix node" in page.inner_text("#deploy-status")
    browser.screenshot("testnet-deployed")
    # Stop asks first: dismissed, nothing happens.
    asked = []
    page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    page.click(f'button[data-stop="{new_id}"]')
    assert asked and asked[0].startswith(f"Stop mix node {new_id[:8]}?")
    assert new_id in {n["node_id"] for n in server.call("/api/betanet/status")["nodes"]}
    # Stop it from its row: it drains, leaves the directory and the graph.
    page.once("dialog", lambda d: d.accept())
    page.click(f'button[data-stop="{new_id}"]')
    _wait_graph(page, len(before))
    assert _graph_ids(page) == before
    assert new_id not in {n["node_id"] for n in server.call("/api/betanet/status")["nodes"]}
    assert new_id not in {n["node_id"] for n in
                          server.call("/api/directory/nodes")["nodes"]}
    # Its page now says it is gone, in words, and asks for it once, not on every refresh.
    asked_node, refreshes = [], []
    page.on("request", lambda r: (f"/api/betanet/nodes/{new_id}" in r.url and asked_node.append(1),
                                  r.url.endswith("/api/betanet/status") and refreshes.append(1)))
    browser.goto(f"/betanet/nodes/{new_id}", name="testnet /betanet/nodes/{stopped}")
    page.wait_for_selector("#node-gone")
    assert "not part of the running testnet" in page.inner_text("#node-gone")
    seen = len(refreshes)
    deadline = time.monotonic() + 15
    while len(refreshes) < seen + 2 and time.monotonic() < deadline:
        page.wait_for_timeout(200)
    assert len(refreshes) >= seen + 2, "the page stopped refreshing the topology"
    assert len(asked_node) == 1, asked_node
    browser.screenshot("testnet-stopped-node")
    assert browser.unexpected_errors([(404, f"/api/betanet/nodes/{new_id}")]) == []


def test_deploy_of_another_format_is_refused(browser, server):
    """A kem node cannot join a sphinx testnet (it would never get traffic): the API
    refuses it with 422 and the form says why, with the testnet's format preselected."""
    page = browser.page
    _login(browser, server)
    before = {n["node_id"] for n in server.call("/api/betanet/status")["nodes"]}
    with pytest.raises(urllib.error.HTTPError) as refused:
        server.call("/api/betanet/deploy", "POST", {"layer": "mix", "format": "kem"})
    assert refused.value.code == 422
    assert json.loads(refused.value.read())["error"]["code"] == "format_mismatch"
    browser.goto("/betanet", name="testnet /betanet")
    _wait_graph(page, len(before))
    assert page.input_value("#deploy-format") == "sphinx"
    assert "carries sphinx packets" in page.inner_text("#deploy-format-help")
    page.select_option("#deploy-format", "kem")
    page.click("#deploy-form button[type=submit]")
    error = page.wait_for_selector("#deploy-error:not(:empty)")
    assert "this testnet carries sphinx packets" in error.inner_text()
    assert "would get no traffic" in error.inner_text()
    assert {n["node_id"] for n in server.call("/api/betanet/status")["nodes"]} == before
    assert browser.unexpected_errors([(422, "/api/betanet/deploy")]) == []
