// Benchmarks: start a run (admins) and follow its progress bar, every past run, the charts
// of one run's results, and comparisons across suites: compiled vs pure Python vs peers,
// throughput vs workers, throughput vs mean delay.

import { api, hasRole } from "../api.js";
import { barChart, lineChart } from "../chart.js";
import { announce, duration, errorBox, h, num, table, when, withCode } from "../dom.js";

export const title = "Benchmarks";

const SUITES = ["core", "api", "node"];
const POLL_MS = 1000;
const HISTORY_RUNS = 8;
// Finished results never change: fetched once per page load of the panel.
const resultCache = new Map();

async function result(run) {
  if (!resultCache.has(run.id)) {
    resultCache.set(run.id, api(`/api/bench/runs/${encodeURIComponent(run.id)}/result`)
      .catch((error) => { resultCache.delete(run.id); throw error; }));
  }
  return resultCache.get(run.id);
}

function throughput(figures) {
  if (!figures || typeof figures !== "object") return null;
  for (const key of ["ops_per_s", "packets_per_s", "achieved_rps"]) {
    if (typeof figures[key] === "number") return figures[key];
  }
  return null;
}

/** Compact numbers for a log axis: 100, 10k, 1M. */
function compact(v) {
  return Number(v).toLocaleString("en", { notation: "compact" });
}

// A paced case (api suite: `target_rps`, `achieved_rps`) that fell short of its target by
// more than this fraction is pointed out: the machine could not offer or serve that rate.
const SHORT_OF_TARGET = 0.9;

/** Sentences about paced cases that reached less than the rate they asked for. */
function shortfalls(doc) {
  return Object.entries(doc.results || {})
    .filter(([, f]) => typeof f.target_rps === "number" && typeof f.achieved_rps === "number" &&
      f.achieved_rps < f.target_rps * SHORT_OF_TARGET)
    .map(([name, f]) => `${name} asked for ${num(f.target_rps, 0)} requests/s and reached ` +
      `${num(f.achieved_rps, 0)}: this machine could not keep that pace during the run (busy ` +
      "with other work, or too small), so the case measured less than its target.");
}

/** The failure of a run in words: the first line of its error; the rest (the end of its
 * output) in a disclosure. */
export function failureBox(run) {
  const [first, ...more] = String(run.error || "").split("\n");
  const rest = more.join("\n").trim();
  const said = run.status === "stopped" ? "was stopped" : run.status;
  return h("div", { class: "alert", role: "alert", id: "bench-failure" },
    h("p", {}, `The run ${said}${first ? `: ${first}` : "."}`),
    rest ? h("details", { class: "data" }, h("summary", {}, "Last lines of its output"),
      h("pre", { class: "output" }, rest)) : "");
}

/** Charts of one run's own results: throughput of every measure, and latencies. */
export function runCharts(doc) {
  const entries = Object.entries(doc.results || {});
  // The node suite's load generator ceiling is the generator's own rate, far above any
  // node figure: it is told in words instead of flattening every other bar.
  const ceiling = doc.results?.["loadgen.ceiling"];
  const rated = entries.filter(([name, f]) => throughput(f) !== null && name !== "loadgen.ceiling");
  const timed = entries.filter(([, f]) => typeof f.p50_ms === "number");
  const suite = doc.suite;
  return h("div", { class: "grid" },
    h("div", {}, ceiling ? h("p", { class: "muted", id: "loadgen-ceiling" },
      `The load generator alone offers ${num(throughput(ceiling), 0)} packets/s; ` +
      "every node figure below is well under it, so the node is what is measured.") : null,
    shortfalls(doc).map((text) => h("p", { class: "notice warn shortfall" }, text)),
    barChart({
      title: `${suite}: throughput per measure`,
      valueLabel: "operations per second (log scale)",
      desc: `Operations per second of each measure of the ${suite} run, on a logarithmic ` +
        "scale so that slow and fast measures both show",
      categories: rated.map(([name]) => name),
      series: [{ name: "ops/s", values: rated.map(([, f]) => throughput(f)) }],
      format: (v) => num(v, 0), tickFormat: compact, log: true,
      empty: "This run has no throughput figures.",
    })),
    timed.length ? h("div", {}, barChart({
      title: `${suite}: latency per measure`, valueLabel: "milliseconds",
      desc: `Median and 99th percentile latency of each measure of the ${suite} run`,
      categories: timed.map(([name]) => name),
      series: [{ name: "p50", values: timed.map(([, f]) => f.p50_ms) },
        { name: "p99", values: timed.map(([, f]) => f.p99_ms ?? null) }],
      format: (v) => num(v, 2),
    })) : null);
}

function figure(doc, name) {
  return doc ? throughput(doc.results?.[name]) : null;
}

// Result names these charts read (bench/core.py, bench/node.py):
//   core: sphinx.process, sphinx.process.ref, sphinxmix.process, sphinx.create5,
//         sphinxmix.create5, kem.process, {sphinx,kem}.batch.threads{1,2}
//   node: inprocess.{fmt}, e2e.{fmt}.workers{1,2}, e2e.{fmt}.processes2, delay.{ms},
//         peers.{connections}; each with ops_per_s (delay.* and peers.* also offered_per_s)

/** [[number captured by `pattern`, figures], ...] of a result document, by number. */
function numbered(doc, pattern) {
  return Object.entries(doc?.results || {})
    .map(([name, figures]) => [name.match(pattern), figures])
    .filter(([match, figures]) => match && throughput(figures) !== null)
    .map(([match, figures]) => [Number(match[1]), figures])
    .sort((a, b) => a[0] - b[0]);
}

function implementationsChart(core) {
  return barChart({
    title: "Compiled vs pure Python vs peers",
    desc: "Operations per second for one Sphinx hop and for creating a 5-hop packet: fogcore's " +
      "compiled core, its pure-Python reference and the sphinxmix library, from the latest " +
      "core run",
    categories: ["sphinx: process one hop", "sphinx: create 5 hops", "kem: process one hop",
      "kem: create 5 hops"],
    series: [
      { name: "fogcore compiled", values: [figure(core, "sphinx.process"), figure(core, "sphinx.create5"),
        figure(core, "kem.process"), figure(core, "kem.create5")] },
      { name: "fogcore pure Python", values: [figure(core, "sphinx.process.ref"), null, null, null] },
      { name: "sphinxmix (peer)", values: [figure(core, "sphinxmix.process"),
        figure(core, "sphinxmix.create5"), null, null] },
    ],
    valueLabel: "operations per second", format: (v) => num(v, 0),
    empty: "No core suite result yet: start the `core` suite (or run `fogcore bench core`).",
  });
}

function workersChart(core, node) {
  const series = [];
  for (const fmt of ["sphinx", "kem"]) {
    const batch = numbered(core, new RegExp(`^${fmt}\\.batch\\.threads(\\d+)$`));
    if (batch.length) {
      series.push({ name: `${fmt}: batch, threads (core)`,
        points: batch.map(([n, f]) => [n, throughput(f)]) });
    }
    const e2e = numbered(node, new RegExp(`^e2e\\.${fmt}\\.workers(\\d+)$`));
    if (e2e.length) {
      series.push({ name: `${fmt}: through a node, threads (node)`,
        points: e2e.map(([n, f]) => [n, throughput(f)]) });
    }
    // Processes sharing the port start from the same one-worker node.
    const one = figure(node, `e2e.${fmt}.workers1`);
    const procs = numbered(node, new RegExp(`^e2e\\.${fmt}\\.processes(\\d+)$`));
    if (procs.length) {
      series.push({ name: `${fmt}: through a node, processes (node)`,
        points: [...(one !== null ? [[1, one]] : []), ...procs.map(([n, f]) => [n, throughput(f)])] });
    }
  }
  return lineChart({
    title: "Throughput vs workers",
    desc: "Packets per second with one and two workers: batch threads in the core suite, " +
      "worker threads and processes of one node in the node suite",
    series, xLabel: "workers", xFormat: (x) => num(x, 0), yLabel: "packets/s",
    yFormat: (y) => num(y, 0), width: 520,
    empty: "No batch results yet: the `core` suite measures batch threads, the `node` suite a node's workers.",
  });
}

function nodeCostChart(node) {
  const formats = ["sphinx", "kem"].filter((fmt) => figure(node, `inprocess.${fmt}`) !== null);
  const row = (name) => formats.map((fmt) => figure(node, name.replace("FMT", fmt)));
  return barChart({
    title: "In process vs through a node",
    desc: "Packets per second of the batch core called in process, and of a whole node " +
      "(TCP in, mixing, TCP out) with one and two workers, from the latest node run",
    categories: formats,
    categoryLabel: "Packet format",
    series: [
      { name: "in process (batch)", values: row("inprocess.FMT") },
      { name: "node, 1 worker", values: row("e2e.FMT.workers1") },
      { name: "node, 2 workers", values: row("e2e.FMT.workers2") },
      { name: "2 node processes", values: row("e2e.FMT.processes2") },
    ],
    valueLabel: "packets per second", format: (v) => num(v, 0),
    empty: "No node suite result yet: the `node` suite (`fogcore bench node`) measures a node end to end.",
  });
}

function pacedChart(node, pattern, options) {
  const rows = numbered(node, pattern);
  return lineChart({
    ...options,
    series: rows.length ? [
      { name: "delivered", points: rows.map(([n, f]) => [n, throughput(f)]) },
      { name: "offered", points: rows.filter(([, f]) => typeof f.offered_per_s === "number")
        .map(([n, f]) => [n, f.offered_per_s]) },
    ] : [],
    xLog: true, yLabel: "packets/s", yFormat: (y) => num(y, 0), width: 520,
  });
}

function comparisonCharts(core, node) {
  const delay = pacedChart(node, /^delay\.(\d+(?:\.\d+)?)$/, {
    title: "Throughput vs mean delay",
    desc: "Packets per second a node delivers at each mean mixing delay, against the rate " +
      "offered, from the latest node run",
    xLabel: "mean delay (ms, log scale)", xFormat: (x) => num(x, 1),
    empty: "No node suite result yet: the `node` suite (`fogcore bench node`) measures throughput at several mean delays.",
  });
  const peers = pacedChart(node, /^peers\.(\d+)$/, {
    title: "Throughput vs incoming connections",
    desc: "Packets per second a node delivers when the same load arrives over more " +
      "connections, from the latest node run",
    xLabel: "connections (log scale)", xFormat: (x) => num(x, 0),
    empty: "No node suite result yet: the `node` suite measures 1 to 1000 incoming connections.",
  });
  return h("div", { class: "grid wide" }, h("div", {}, implementationsChart(core)),
    h("div", {}, workersChart(core, node)), h("div", {}, nodeCostChart(node)),
    h("div", {}, delay), h("div", {}, peers));
}

// Each suite's headline measure and its unit: one chart per suite, so that core
// operations, API requests and node packets never share an axis.
const HEADLINES = {
  core: ["sphinx.process", "one sphinx hop", "operations/s"],
  api: ["sqlite/stats", "dashboard reads (SQLite)", "requests/s"],
  node: ["e2e.kem.workers1", "kem through a node", "packets/s"],
};

function historyCharts(docs) {
  const charts = Object.entries(HEADLINES).map(([suite, [name, label, unit]]) => {
    const points = docs.filter((doc) => doc.suite === suite)
      .map((doc) => [doc.finished || doc.started, figure(doc, name)])
      .filter(([, value]) => value !== null);
    return points.length ? h("div", {}, lineChart({
      title: `Past ${suite} runs: ${label}`,
      desc: `${unit} of ${name} in each finished ${suite} run, by when it finished`,
      series: [{ name: label, points }],
      xLabel: "finished", xFormat: (x) => new Date(x * 1000).toLocaleString("en-GB",
        { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" }),
      yLabel: unit, yFormat: (y) => num(y, 0), zeroBased: true, width: 520,
    })) : null;
  }).filter(Boolean);
  return charts.length ? h("div", { class: "grid wide", id: "history-charts" }, charts)
    : h("p", { class: "empty" }, "No finished runs yet: their headline figures over time appear here.");
}

export function render(main, { rest }) {
  const admin = hasRole("admin");
  const chosen = rest[0] === "runs" && rest[1] ? rest[1] : null;
  const errors = h("div", { id: "bench-errors" });
  const live = h("div", { id: "bench-live", "aria-live": "polite" });
  const runsCard = h("section", { class: "card", "aria-labelledby": "runs-title" },
    h("h2", { id: "runs-title" }, "Past runs"), h("p", { class: "muted" }, "Loading…"));
  const resultCard = h("section", { class: "card", id: "bench-result",
    "aria-labelledby": "result-title" });
  const compareCard = h("section", { class: "card", "aria-labelledby": "compare-title" },
    h("h2", { id: "compare-title" }, "Comparisons"));
  const startError = h("div", { class: "alert", role: "alert", id: "bench-start-error" });
  const suite = h("select", { id: "bench-suite", name: "suite" },
    SUITES.map((name) => h("option", { value: name }, name)));
  const quick = h("input", { id: "bench-quick", name: "quick", type: "checkbox", checked: true });
  const startButton = h("button", { type: "submit", class: "button", id: "bench-start" }, "Start run");
  const startCard = admin ? h("section", { class: "card", "aria-labelledby": "start-title" },
    h("h2", { id: "start-title" }, "Start a run"),
    h("form", { class: "form inline", onsubmit: onStart },
      h("div", { class: "field" }, h("label", { for: "bench-suite" }, "Suite"), suite),
      h("div", { class: "field check" }, quick, h("label", { for: "bench-quick" }, "Quick (short measurements)")),
      startButton),
    startError, live) : h("section", { class: "card" }, live,
    h("p", { class: "muted" }, "Only admins start benchmark runs."));
  main.append(h("h1", {}, "Benchmarks"), errors, startCard, resultCard, compareCard, runsCard);

  let stopped = false;
  let poller = null;
  let watching = null;

  async function onStart(event) {
    event.preventDefault();
    startError.textContent = "";
    startButton.disabled = true;
    try {
      const run = await api("/api/bench/runs", {
        method: "POST", body: { suite: suite.value, quick: quick.checked },
      });
      announce(`Started the ${run.suite} benchmark.`);
      watch(run);
      await loadRuns();
    } catch (failure) {
      startError.textContent = failure.message;
    } finally {
      startButton.disabled = Boolean(watching);
    }
  }

  async function stopRun(run) {
    try {
      await api(`/api/bench/runs/${encodeURIComponent(run.id)}/stop`, { method: "POST" });
    } catch (failure) {
      errors.replaceChildren(errorBox(`Stopping the run failed: ${failure.message}`));
    }
  }

  function showProgress(run) {
    const percent = Math.round(run.progress * 100);
    live.replaceChildren(h("div", { class: "progress-row", id: "bench-progress" },
      h("label", { for: "bench-progress-bar" },
        `Run ${run.id.slice(0, 8)} (${run.suite}): ${run.status}, ${percent} %`,
        run.step ? ` — ${run.step}` : ""),
      h("progress", { id: "bench-progress-bar", max: 1, value: run.progress }, `${percent} %`),
      admin && run.status === "running" ? h("div", {}, h("button", {
        type: "button", class: "button danger small", onclick: () => stopRun(run),
      }, "Stop run")) : null));
  }

  function watch(run) {
    watching = run.id;
    startButton.disabled = true;
    showProgress(run);
    window.clearInterval(poller);
    poller = window.setInterval(async () => {
      try {
        const now = await api(`/api/bench/runs/${encodeURIComponent(watching)}`);
        if (stopped) return;
        showProgress(now);
        if (!["queued", "running"].includes(now.status)) {
          window.clearInterval(poller);
          watching = null;
          startButton.disabled = false;
          if (now.status === "done") {
            announce(`The ${now.suite} benchmark finished.`);
            await showResult(now);
          } else {
            live.append(failureBox(now));
          }
          await loadComparisons(await loadRuns());
        }
      } catch (failure) {
        errors.replaceChildren(errorBox(`Run progress: ${failure.message}`));
      }
    }, POLL_MS);
  }

  // The run's own times, as in the table of runs (the result document's cover the
  // measurements only, without the process start).
  function tookText(run) {
    return run.finished_at && run.started_at ? duration(run.finished_at - run.started_at) : "–";
  }

  async function showResult(run) {
    resultCard.replaceChildren(h("h2", { id: "result-title" }, `Results of run ${run.id.slice(0, 8)} (${run.suite})`),
      h("p", { class: "muted" }, "Loading…"));
    try {
      const doc = await result(run);
      if (stopped) return;
      const machine = doc.machine || {};
      resultCard.replaceChildren(
        h("h2", { id: "result-title" }, `Results of run ${run.id.slice(0, 8)} (${run.suite})`),
        h("p", { class: "muted", id: "result-took" }, `Finished ${when(run.finished_at || doc.finished)}, ` +
          `took ${tookText(run)}` + (machine.cpu_model ? ` on ${machine.cpu_model}` : "") + "."),
        runCharts(doc));
    } catch (failure) {
      resultCard.replaceChildren(h("h2", { id: "result-title" }, "Results"), errorBox(failure));
    }
  }

  async function loadRuns() {
    let runs;
    try {
      runs = (await api("/api/bench/runs?limit=50")).runs;
    } catch (failure) {
      runsCard.replaceChildren(h("h2", { id: "runs-title" }, "Past runs"), errorBox(failure));
      return [];
    }
    if (stopped) return runs;
    const columns = [
      { label: "Run", value: (r) => (r.has_result
        ? h("a", { href: `/benchmarks/runs/${encodeURIComponent(r.id)}` }, h("code", {}, r.id.slice(0, 8)))
        : h("code", {}, r.id.slice(0, 8))) },
      { label: "Suite", value: (r) => r.suite },
      { label: "Status", value: (r) => h("span", { class: r.status === "done" ? "status-ok"
        : (["failed", "stopped"].includes(r.status) ? "status-bad" : "status-warn") }, r.status) },
      { label: "Quick", value: (r) => (r.params && r.params.quick ? "yes" : "no") },
      { label: "Started", value: (r) => when(r.started_at || r.created_at) },
      { label: "Took", value: (r) => tookText(r), num: true },
      { label: "Note", value: (r) => h("span", { class: "note" },
        (r.error || r.step || "").split("\n")[0]) },
    ];
    runsCard.replaceChildren(h("h2", { id: "runs-title" }, "Past runs"),
      runs.length ? table("Benchmark runs, newest first", columns, runs,
        { rowClass: (r) => (r.id === chosen ? "selected" : null) })
        : h("p", { class: "empty" }, withCode(admin
          ? "No runs yet: start one above (a quick `api` run takes about half a minute)."
          : "No runs yet: an admin can start one here, or run `fogcore bench SUITE` on the server.")));
    return runs;
  }

  async function loadComparisons(runs) {
    const done = runs.filter((r) => r.status === "done" && r.has_result);
    const latest = (name) => done.find((r) => r.suite === name);
    const recent = done.slice(0, HISTORY_RUNS);
    try {
      const [core, node, history] = await Promise.all([
        latest("core") ? result(latest("core")) : null,
        latest("node") ? result(latest("node")) : null,
        Promise.all(recent.map(result)),
      ]);
      if (stopped) return;
      compareCard.replaceChildren(h("h2", { id: "compare-title" }, "Comparisons"),
        comparisonCharts(core, node), h("h3", {}, "Past runs over time"), historyCharts(history));
    } catch (failure) {
      compareCard.replaceChildren(h("h2", { id: "compare-title" }, "Comparisons"), errorBox(failure));
    }
  }

  function runWithoutResult(run) {
    if (run.status === "failed" || run.status === "stopped") return failureBox(run);
    return h("p", { class: "empty", id: "run-pending" }, `This run is ${run.status}: its ` +
      "charts appear here when it is done.");
  }

  async function start() {
    const runs = await loadRuns();
    const active = runs.find((r) => ["queued", "running"].includes(r.status));
    if (active) watch(active);
    const shown = chosen ? runs.find((r) => r.id === chosen) : runs.find((r) => r.status === "done" && r.has_result);
    if (shown && shown.has_result) await showResult(shown);
    else if (chosen) resultCard.replaceChildren(h("h2", { id: "result-title" }, "Results"), shown
      ? runWithoutResult(shown)
      : h("p", { class: "empty", id: "run-missing" }, `No run ${chosen} in the last 50 runs.`));
    else resultCard.replaceChildren(h("h2", { id: "result-title" }, "Results"),
      h("p", { class: "empty" }, "No finished run yet: its charts appear here."));
    await loadComparisons(runs);
  }

  return start().then(() => () => {
    stopped = true;
    window.clearInterval(poller);
  });
}
