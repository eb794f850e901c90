// Live summary: the Betanet's totals (when a testnet runs), the API's health and what the
// store holds, refreshed every few seconds.

import { api } from "../api.js";
import { lineChart } from "../chart.js";
import { duration, h, num, replaceKeeping } from "../dom.js";

export const title = "Dashboard";

const REFRESH_MS = 3000;
const HISTORY_S = 3600; // the API keeps the last hour (GET /api/dashboard/throughput)

/** A node's state in words, for the "not up" line. */
export const STATE_WORDS = {
  up: "up", unknown: "not probed yet", unreachable: "unreachable", draining: "draining",
  down: "down (its process exited)",
};

function stat(label, value, unit, id) {
  return h("div", { class: "stat" },
    h("dt", {}, label),
    h("dd", { id }, value, unit ? h("small", {}, ` ${unit}`) : null));
}

async function timed(path) {
  const start = performance.now();
  const body = await api(path, { auth: false });
  return { body, ms: performance.now() - start };
}

export function render(main) {
  const errors = h("div", { id: "dashboard-errors" });
  const betanet = h("section", { class: "card", "aria-labelledby": "betanet-summary" },
    h("h2", { id: "betanet-summary" }, "Betanet"), h("p", { class: "muted" }, "Loading…"));
  const api_ = h("section", { class: "card", "aria-labelledby": "api-summary" },
    h("h2", { id: "api-summary" }, "API and store"), h("p", { class: "muted" }, "Loading…"));
  const chartSlot = h("div", { id: "throughput-chart" });
  const updated = h("p", { class: "muted", id: "dashboard-updated" });
  main.append(h("h1", {}, "Dashboard"), updated, errors, betanet, chartSlot, api_);

  let history = null; // [{t, packets_in_per_s, ...}], oldest first; null until loaded
  let timer = null;
  let busy = false;
  let stopped = false;

  // The last hour, kept by the API, so the chart is drawn whole on every visit.
  async function loadHistory() {
    try {
      history = (await api("/api/dashboard/throughput")).points;
    } catch {
      history = [];
    }
  }

  function showBetanet(status) {
    if (!status) {
      betanet.replaceChildren(
        h("h2", { id: "betanet-summary" }, "Betanet"),
        h("div", { class: "empty", id: "betanet-empty" },
          h("strong", {}, "No local testnet is running. "),
          "Start one with ", h("code", {}, "fogcore up"),
          "; its nodes, packet rates, drops and delays then appear here."));
      chartSlot.replaceChildren();
      return;
    }
    const nodes = status.nodes || [];
    const up = nodes.filter((n) => n.state === "up").length;
    const notUp = nodes.filter((n) => n.state !== "up");
    const t = status.totals || {};
    const reasons = Object.entries(t.drops_by_reason || {})
      .map(([reason, count]) => `${reason}: ${num(count, 0)}`).join(", ");
    const nodesUp = stat("Nodes up", `${up} / ${nodes.length}`, null, "stat-nodes-up");
    if (notUp.length) nodesUp.classList.add("stat-warn");
    betanet.replaceChildren(
      h("h2", { id: "betanet-summary" }, "Betanet"),
      notUp.length ? h("div", { class: "notice warn", id: "nodes-warning" },
        h("strong", {}, `${notUp.length} of ${nodes.length} nodes not up: `),
        notUp.map((n) => `${n.layer} node ${n.node_id.slice(0, 8)} ${STATE_WORDS[n.state] || n.state}`)
          .join("; "), ". ", h("a", { href: "/betanet" }, "See the topology"), ".") : "",
      h("dl", { class: "stats", id: "betanet-stats" },
        nodesUp,
        stat("Packets in", num(t.packets_in_per_s, 0), "/s", "stat-packets-in"),
        stat("Packets out", num(t.packets_out_per_s, 0), "/s", "stat-packets-out"),
        stat("Drops", num(t.drops_per_s, 1), "/s", "stat-drops"),
        stat("Queue depth", num(t.queue_depth, 0), "packets", "stat-queue"),
        stat("Mean delay", num(t.mean_delay_ms, 1), "ms", "stat-delay")),
      h("p", { class: "muted", id: "drops-by-reason" }, reasons
        ? `Drops by reason since start: ${reasons}.` : "No drops since start."),
      h("p", {}, h("a", { href: "/betanet" }, "Open the topology and per-node charts")));
    if (!history) return;
    const now = status.time || Date.now() / 1000;
    if (!history.length || now > history[history.length - 1].t) history.push({ t: now, ...t });
    while (history.length && history[0].t < now - HISTORY_S) history.shift();
    const series = (key, name) => ({ name,
      points: history.map((p) => [(p.t - now) / 60, p[key] || 0]) });
    replaceKeeping(chartSlot, h("section", { class: "card" }, lineChart({
      title: "Packets per second, last hour",
      desc: "Packets in, packets out and drops per second across the testnet over the " +
        "last hour",
      series: [series("packets_in_per_s", "in"), series("packets_out_per_s", "out"),
        series("drops_per_s", "drops")],
      xLabel: "minutes ago", xFormat: (x) => num(-x || 0, 1), yLabel: "packets/s",
      yFormat: (y) => num(y, 0), dashed: ["out"],
    })));
  }

  function showApi(health, stats) {
    const ready = health && health.body.status === "ready";
    const layers = Object.entries(stats.nodes.by_layer || {})
      .map(([layer, count]) => `${layer} ${count}`).join(", ");
    const runs = stats.bench_runs || {};
    api_.replaceChildren(
      h("h2", { id: "api-summary" }, "API and store"),
      h("dl", { class: "stats", id: "api-stats" },
        stat("API health", ready ? "ready" : "not ready", health ? `${num(health.ms, 0)} ms` : null,
          "stat-health"),
        stat("Database", stats.database, null, "stat-database"),
        stat("Nodes in directory", num(stats.nodes.total, 0), null, "stat-directory"),
        stat("Benchmark runs", num(Object.values(runs).reduce((a, b) => a + b, 0), 0),
          runs.running ? `${runs.running} running` : null, "stat-runs"),
        stat("Users", num(stats.users, 0), null, "stat-users"),
        stat("API uptime", duration(stats.uptime_s), null, "stat-uptime")),
      h("p", { class: "muted" }, layers ? `Directory by layer: ${layers}.`
        : "The directory lists no node."));
    document.getElementById("stat-health").classList.add(ready ? "status-ok" : "status-bad");
  }

  async function refresh() {
    if (busy || stopped) return;
    busy = true;
    const problems = [];
    const [health, stats, status] = await Promise.allSettled([
      timed("/health/ready"),
      api("/api/dashboard/stats"),
      api("/api/betanet/status"),
    ]);
    busy = false;
    if (stopped) return;
    if (status.status === "fulfilled" && history === null) await loadHistory();
    if (stopped) return;
    if (status.status === "fulfilled") showBetanet(status.value);
    else if (status.reason.status === 404) showBetanet(null);
    else problems.push(`Betanet status: ${status.reason.message}`);
    if (stats.status === "fulfilled") {
      showApi(health.status === "fulfilled" ? health.value : null, stats.value);
    } else {
      problems.push(`Store summary: ${stats.reason.message}`);
    }
    if (health.status === "rejected") problems.push(`API health: ${health.reason.message}`);
    errors.replaceChildren(...problems.map((p) => h("div", { class: "alert", role: "alert" }, p)));
    updated.textContent = `Updated ${new Date().toLocaleTimeString("en-GB")}; refreshed every ${REFRESH_MS / 1000} s.`;
  }

  // A hidden tab does not poll; it catches up as soon as it is shown again.
  function onVisible() {
    if (!document.hidden) refresh();
  }
  document.addEventListener("visibilitychange", onVisible);
  timer = window.setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
  return refresh().then(() => () => {
    stopped = true;
    window.clearInterval(timer);
    document.removeEventListener("visibilitychange", onVisible);
  });
}
