// Live summary: the Betanet's totals (when a testnet runs), the API's health and what the
// store holds, refreshed every few seconds.

import { api } from "../api.js";
import { lineChart } from "../chart.js";
import { duration, h, num, replaceKeeping } from "../dom.js";

export const title = "Dashboard";

const REFRESH_MS = 3000;
const HISTORY_POINTS = 100; // five minutes at one point every three seconds

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

  const history = [];
  let timer = null;
  let busy = false;
  let stopped = false;

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
    const t = status.totals || {};
    const reasons = Object.entries(t.drops_by_reason || {})
      .map(([reason, count]) => `${reason}: ${num(count, 0)}`).join(", ");
    betanet.replaceChildren(
      h("h2", { id: "betanet-summary" }, "Betanet"),
      h("dl", { class: "stats", id: "betanet-stats" },
        stat("Nodes up", `${up} / ${nodes.length}`, null, "stat-nodes-up"),
        stat("Packets in", num(t.packets_in_per_s, 0), "/s", "stat-packets-in"),
        stat("Packets out", num(t.packets_out_per_s, 0), "/s", "stat-packets-out"),
        stat("Drops", num(t.drops_per_s, 1), "/s", "stat-drops"),
        stat("Queue depth", num(t.queue_depth, 0), "packets", "stat-queue"),
        stat("Mean delay", num(t.mean_delay_ms, 1), "ms", "stat-delay")),
      reasons ? h("p", { class: "muted" }, `Drops by reason: ${reasons}`) : null,
      h("p", {}, h("a", { href: "/betanet" }, "Open the topology and per-node charts")));
    history.push({ t: status.time || Date.now() / 1000, ...t });
    while (history.length > HISTORY_POINTS) history.shift();
    const t0 = history[history.length - 1].t;
    const series = (key, name) => ({ name,
      points: history.map((p) => [p.t - t0, p[key] || 0]) });
    replaceKeeping(chartSlot, h("section", { class: "card" }, lineChart({
      title: "Packets per second, last minutes",
      desc: "Packets in, packets out and drops per second across the testnet",
      series: [series("packets_in_per_s", "in"), series("packets_out_per_s", "out"),
        series("drops_per_s", "drops")],
      xLabel: "seconds ago", xFormat: (x) => num(-x || 0, 0), yLabel: "packets/s",
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
      layers ? h("p", { class: "muted" }, `Directory by layer: ${layers}`) : null);
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

  timer = window.setInterval(refresh, REFRESH_MS);
  return refresh().then(() => () => {
    stopped = true;
    window.clearInterval(timer);
  });
}
