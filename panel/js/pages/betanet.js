// Betanet: the testnet's topology as a layered graph, a table of every node, per-node live
// charts (throughput, latency, drops over the last minutes), the node's VRF epoch proofs
// with a form to audit a delay, and for operators: deploy and stop nodes.
//
// The page is built once and its parts are updated in place on every refresh, so that
// keyboard focus, typed input and opened data tables survive the refresh.

import { api, hasRole } from "../api.js";
import { lineChart } from "../chart.js";
import { announce, errorBox, h, num, replaceKeeping, table, when } from "../dom.js";
import { LAYER_ORDER, topologyGraph } from "../graph.js";

export const title = "Betanet";

const REFRESH_MS = 2000;
const FORMATS = ["sphinx", "kem"];

function nodeHref(node) {
  return `/betanet/nodes/${encodeURIComponent(node.node_id)}`;
}

function short(id) {
  return id.slice(0, 8);
}

/** A node's state in words (docs/directory.md, docs/testnet.md). */
const STATE_WORDS = {
  up: "up", unknown: "not probed yet", unreachable: "unreachable", draining: "draining",
  down: "down",
};

function stateWords(state) {
  return STATE_WORDS[state] || state;
}

function stateClass(state) {
  if (state === "up") return "status-ok";
  return state === "draining" || state === "unknown" ? "status-warn" : "status-bad";
}

// A latency is a figure of packets that went through: a node that carried none in the
// interval has no latency ("—"), not a latency of 0 ms.
function latency(node, key) {
  return node[key] > 0 || node.packets_out_per_s > 0 ? num(node[key], 1) : "—";
}

// Links drawn and counted: both ends alive, and packets on them.
function liveLinks(nodes, links) {
  const alive = new Set(nodes.filter((n) => n.state === "up" || n.state === "draining")
    .map((n) => n.node_id));
  return links.filter((l) => alive.has(l.from) && alive.has(l.to) && l.packets_per_s > 0);
}

function emptyState() {
  return h("div", { class: "empty", id: "betanet-empty" },
    h("strong", {}, "No local testnet is running. "),
    "Start one on this machine with ", h("code", {}, "fogcore up"),
    " (directory, mix nodes, this API and panel on loopback). ",
    "The topology, per-node charts and VRF proofs appear here as soon as it answers.");
}

function historyCharts(node) {
  const history = node.history || [];
  const t0 = history.length ? history[history.length - 1].t : 0;
  const series = (key, name) => ({ name, points: history.map((p) => [p.t - t0, p[key] ?? 0]) });
  const x = { xLabel: "seconds ago", xFormat: (v) => num(-v || 0, 0), width: 440 };
  const empty = "No history yet: the node reports its figures every second or so.";
  return h("div", { class: "grid" },
    h("div", {}, lineChart({ title: "Throughput", yLabel: "packets/s", empty, ...x,
      desc: "Packets in and out per second over the last minutes (out dashed: when the " +
        "two are equal, in shows through)",
      series: [series("packets_in_per_s", "in"), series("packets_out_per_s", "out")],
      dashed: ["out"] })),
    h("div", {}, lineChart({ title: "Latency", yLabel: "ms", empty, ...x,
      desc: "Median and 99th percentile latency (mixing delay plus processing) over the " +
        "last minutes",
      series: [series("latency_p50_ms", "p50"), series("latency_p99_ms", "p99")] })),
    h("div", {}, lineChart({ title: "Drops", yLabel: "drops/s", empty, ...x,
      desc: "Packets dropped per second over the last minutes",
      series: [series("drops_per_s", "drops/s")] })),
    h("div", {}, lineChart({ title: "Queue depth", yLabel: "packets", empty, ...x,
      desc: "Packets waiting in the node (mixing delay, sending) over the last minutes",
      series: [series("queue_depth", "queue depth")], yFormat: (v) => num(v, 0) })));
}

const NODE_STATS = [
  ["packets_in_per_s", "In", "/s", 0], ["packets_out_per_s", "Out", "/s", 0],
  ["drops_per_s", "Drops", "/s", 1], ["queue_depth", "Queue", "", 0],
  ["latency_p50_ms", "Latency p50", "ms", 1], ["latency_p99_ms", "Latency p99", "ms", 1],
];

/** The "Audit a delay" form of one node: built once, its epochs follow the proofs. */
function auditForm(nodeId) {
  const result = h("div", { id: "audit-result", role: "status", "aria-live": "polite" });
  const error = h("div", { class: "alert", role: "alert", id: "audit-error" });
  const epoch = h("select", { id: "audit-epoch", name: "epoch", required: true,
    "aria-describedby": "audit-epoch-help" });
  const help = h("small", { id: "audit-epoch-help", class: "muted" });
  const submit = h("button", { type: "submit", class: "button" }, "Audit");
  const input = (id, label, attrs) => h("div", { class: "field" },
    h("label", { for: id }, label), h("input", { id, name: id, required: true, ...attrs }));
  let shown = "";

  // Only published epochs can be audited: the select lists them, newest first, and keeps
  // the reader's choice when a new epoch is added.
  function setProofs(proofs) {
    const key = proofs.map((p) => p.epoch).join(",");
    if (key === shown) return;
    shown = key;
    const chosen = epoch.value;
    epoch.replaceChildren(...(proofs.length
      ? proofs.map((p) => h("option", { value: p.epoch }, String(p.epoch)))
      : [h("option", { value: "" }, "no proof published yet")]));
    if (proofs.some((p) => String(p.epoch) === chosen)) epoch.value = chosen;
    epoch.disabled = !proofs.length;
    submit.disabled = !proofs.length;
    // Epochs are numbered time // length and published once over: the length follows.
    const newest = proofs[0];
    const length = newest ? Math.round(newest.published_at / (newest.epoch + 1)) : 0;
    const lasts = length > 0 ? `an epoch lasts ${length} s` : "one is added as each epoch ends";
    help.textContent = proofs.length
      ? `${proofs.length} published epochs, newest first; ${lasts}.`
      : "The node publishes its proof after each delay epoch ends.";
  }

  // The form's own checks, in words (the browser's would block the submit silently and
  // leave the previous result on screen).
  function problems(form) {
    const value = (name) => form.elements[name].value.trim();
    const found = [];
    const whole = (name, label, min) => {
      const text = value(name);
      const number = Number(text);
      if (text === "" || !Number.isInteger(number) || number < min) {
        found.push([name, `${label} must be a whole number of µs, at least ${min}.`]);
        return null;
      }
      return number;
    };
    if (!/^[0-9a-fA-F]{64}$/.test(value("audit-tag"))) {
      found.push(["audit-tag", "The replay tag must be exactly 64 hexadecimal digits."]);
    }
    const delay = whole("audit-delay", "The claimed delay", 0);
    const mean = whole("audit-mean", "The mean delay", 1);
    const max = whole("audit-max", "The maximum delay", 1);
    if (mean !== null && max !== null && mean > max) {
      found.push(["audit-mean", `The mean delay (${num(mean, 0)} µs) cannot exceed the ` +
        `maximum (${num(max, 0)} µs): check the two figures.`]);
    }
    if (delay !== null && max !== null && delay > max) {
      found.push(["audit-delay", `The claimed delay (${num(delay, 0)} µs) is above the ` +
        `maximum delay (${num(max, 0)} µs): no delay of this node can be that long, so ` +
        "there is nothing to audit (check the units: µs, not ms)."]);
    }
    return found;
  }

  async function onSubmit(event) {
    event.preventDefault();
    const form = event.currentTarget;
    error.textContent = "";
    result.textContent = "";
    result.className = "";
    const value = (name) => form.elements[name].value.trim();
    for (const field of form.querySelectorAll("[aria-invalid]")) field.removeAttribute("aria-invalid");
    const found = problems(form);
    if (found.length) {
      for (const [name] of found) form.elements[name].setAttribute("aria-invalid", "true");
      error.replaceChildren(...found.map(([, text]) => h("p", {}, text)));
      form.elements[found[0][0]].focus();
      return;
    }
    submit.disabled = true;
    try {
      const answer = await api("/api/betanet/vrf/audit", {
        method: "POST",
        body: {
          node_id: nodeId,
          epoch: Number(value("epoch")),
          tag: value("audit-tag").toLowerCase(),
          claimed_delay_us: Number(value("audit-delay")),
          mean_us: Number(value("audit-mean")),
          max_us: Number(value("audit-max")),
        },
      });
      result.textContent = answer.valid
        ? `Valid: epoch ${answer.epoch}'s proof gives exactly this delay for this packet.`
        : `Not valid: the node's published proof for epoch ${answer.epoch} gives another ` +
          "delay for this packet (or these delay parameters are not the node's).";
      result.className = answer.valid ? "notice status-ok" : "notice status-bad";
    } catch (failure) {
      error.textContent = failure.status === 404
        ? "No proof of this node for that epoch (the node may have left the directory)."
        : failure.message;
    } finally {
      submit.disabled = epoch.disabled;
    }
  }

  const form = h("form", { class: "form", id: "audit-form", onsubmit: onSubmit,
    "aria-labelledby": "audit-title", novalidate: true },
  h("h3", { id: "audit-title" }, "Audit a delay"),
  h("p", { class: "muted" }, "Check the delay this node gave one of your packets against its " +
    "published VRF proof for the epoch. The tag is the packet's 32-byte replay tag at this " +
    "hop; the mean and maximum are the node's delay settings, filled in from the node."),
  h("div", { class: "field" }, h("label", { for: "audit-epoch" }, "Epoch"), epoch, help),
  input("audit-tag", "Replay tag (64 hex digits)", { pattern: "[0-9a-fA-F]{64}",
    autocomplete: "off", spellcheck: "false", "aria-describedby": "audit-tag-help" }),
  h("small", { id: "audit-tag-help", class: "muted" }, "64 hexadecimal digits."),
  input("audit-delay", "Claimed delay (µs)", { type: "number", min: 0, step: 1 }),
  input("audit-mean", "Mean delay (µs)", { type: "number", min: 1, step: 1 }),
  input("audit-max", "Maximum delay (µs)", { type: "number", min: 1, step: 1 }),
  error, result, submit);

  // The node's delay parameters, filled in once: the reader may change them afterwards.
  let parametersSet = false;
  function setParameters(meanUs, maxUs) {
    if (parametersSet || !(meanUs > 0 && maxUs > 0)) return;
    parametersSet = true;
    form.elements["audit-mean"].value = String(meanUs);
    form.elements["audit-max"].value = String(maxUs);
  }
  return { form, setProofs, setParameters };
}

/** The selected node's section: heading, figures, charts, proofs and the audit form. */
function nodeDetail(section, nodeId) {
  const heading = h("h2", { id: "node-title" }, "Node ", h("code", {}, nodeId.slice(0, 16)));
  const summary = h("p", { class: "muted", id: "node-summary" }, "Loading…");
  const values = new Map();
  const stats = h("dl", { class: "stats", id: "node-stats" }, NODE_STATS.map(([key, label, unit]) => {
    const value = h("span", {}, "–");
    values.set(key, value);
    return h("div", { class: "stat" }, h("dt", {}, label),
      h("dd", {}, value, unit ? h("small", {}, ` ${unit}`) : null));
  }));
  const charts = h("div", { id: "node-charts" });
  const proofs = h("div", { id: "vrf-proofs" });
  const audit = auditForm(nodeId);
  let proofKey = null;
  const body = [summary, stats, h("h3", {}, "Live charts"), charts,
    h("h3", {}, "VRF epoch proofs"), proofs, audit.form];
  section.replaceChildren(heading, ...body);

  function update(node) {
    if (!heading.isConnected) section.replaceChildren(heading, ...body);
    heading.replaceChildren(`${node.layer} node `, h("code", {}, node.node_id.slice(0, 16)));
    summary.replaceChildren(`${node.format} packets at ${node.address}; state `,
      h("strong", { class: stateClass(node.state) }, stateWords(node.state)),
      `; ${num(node.connections, 0)} connections.`);
    for (const [key, , , digits] of NODE_STATS) {
      values.get(key).textContent = key.startsWith("latency_") ? latency(node, key)
        : num(node[key], digits);
    }
    replaceKeeping(charts, historyCharts(node));
    audit.setParameters(node.delay_mean_us, node.delay_max_us);
    const list = node.vrf || [];
    const key = list.map((p) => p.epoch).join(",");
    if (key !== proofKey) {
      proofKey = key;
      replaceKeeping(proofs, list.length
        ? table("Published VRF proofs of this node, newest first", [
          { label: "Epoch", value: (p) => String(p.epoch), num: true },
          { label: "Output (beta)", value: (p) => h("code", { title: p.beta }, `${p.beta.slice(0, 24)}…`) },
          { label: "Proof", value: (p) => h("code", { title: p.proof }, `${p.proof.slice(0, 24)}…`) },
          { label: "Published", value: (p) => when(p.published_at) },
        ], list)
        : h("p", { class: "empty" }, "No proofs published yet: the node publishes one after " +
          "each delay epoch ends, a few seconds from now."));
      audit.setProofs(list);
    }
  }

  // Whether the node answered 404: it is gone for good, so its page stops asking.
  let isGone = false;
  function gone(failure) {
    isGone = failure.status === 404;
    section.replaceChildren(h("h2", { id: "node-title" }, "Node ", h("code", {}, nodeId.slice(0, 16))),
      failure.status === 404
        ? h("p", { class: "empty", id: "node-gone" }, "This node is not part of the running " +
          "testnet (stopped, or never deployed). ", h("a", { href: "/betanet" }, "Back to the topology"), ".")
        : errorBox(`Node details: ${failure.message}`));
  }

  return { update, gone, isGone: () => isGone };
}

export function render(main, { rest, navigate }) {
  const selectedId = rest[0] === "nodes" && rest[1] ? rest[1].toLowerCase() : null;
  const operator = hasRole("operator");
  const errors = h("div", { id: "betanet-errors" });
  const topologySummary = h("p", { class: "muted", id: "topology-summary" }, "Loading…");
  const graphSlot = h("div", { id: "topology-graph" });
  const totalsLine = h("p", { class: "muted", id: "betanet-totals" });
  const topology = h("section", { class: "card", "aria-labelledby": "topology-title" },
    h("h2", { id: "topology-title" }, "Topology"), topologySummary, graphSlot, totalsLine);
  const nodesSlot = h("div", {});
  const nodesCard = h("section", { class: "card", "aria-labelledby": "nodes-title", hidden: true },
    h("h2", { id: "nodes-title" }, "Nodes"), nodesSlot);
  const detail = h("section", { class: "card", id: "node-detail", "aria-labelledby": "node-title",
    hidden: !selectedId });
  const deployStatus = h("p", { id: "deploy-status", role: "status", class: "muted" });
  const deployError = h("div", { class: "alert", role: "alert", id: "deploy-error" });
  const deployButton = h("button", { type: "submit", class: "button" }, "Deploy node");
  const layer = h("select", { id: "deploy-layer", name: "layer" },
    LAYER_ORDER.map((name) => h("option", { value: name, selected: name === "mix" }, name)));
  const format = h("select", { id: "deploy-format", name: "format",
    "aria-describedby": "deploy-format-help" },
  FORMATS.map((name) => h("option", { value: name }, name)));
  const formatHelp = h("small", { id: "deploy-format-help", class: "muted" });
  let testnetFormat = null;
  const deploy = operator ? h("section", { class: "card", "aria-labelledby": "deploy-title", hidden: true },
    h("h2", { id: "deploy-title" }, "Deploy a node"),
    h("p", { class: "muted" }, "Starts one more node process on this machine; it registers " +
      "with the directory and clients route through it from their next directory refresh."),
    h("form", { class: "form inline", id: "deploy-form", onsubmit: onDeploy },
      h("div", { class: "field" }, h("label", { for: "deploy-layer" }, "Layer"), layer),
      h("div", { class: "field" }, h("label", { for: "deploy-format" }, "Packet format"), format,
        formatHelp),
      deployButton),
    deployStatus, deployError) : null;
  main.append(h("h1", {}, "Betanet"), errors, topology, detail, nodesCard, deploy || "");

  const detailView = selectedId ? nodeDetail(detail, selectedId) : null;
  // Every request of this page is aborted when the reader leaves it.
  const aborter = new AbortController();
  const signal = aborter.signal;
  const stopping = new Set();
  let timer = null;
  let stopped = false;
  let running = true;
  let known = null; // node id -> state, to announce nodes joining, leaving, going down

  async function onDeploy(event) {
    event.preventDefault();
    deployError.textContent = "";
    deployButton.disabled = true;
    deployStatus.textContent = `Starting a ${layer.value} node (${format.value})…`;
    try {
      const node = await api("/api/betanet/deploy", {
        method: "POST", body: { layer: layer.value, format: format.value }, signal,
      });
      deployStatus.textContent = `Deployed ${node.layer} node ${short(node.node_id)} at ${node.address}.`;
      await refreshAfterChange();
    } catch (failure) {
      if (stopped) return;
      deployStatus.textContent = "";
      if (failure.status === 404) {
        deployError.textContent = "No testnet answers: start one with fogcore up before deploying nodes.";
      } else if (failure.code === "format_mismatch") {
        deployError.textContent = `Not deployed: this testnet carries ${testnetFormat || "other"} ` +
          `packets, and a ${format.value} node would get no traffic. Choose ${testnetFormat || "the testnet's format"}.`;
        format.focus();
      } else {
        deployError.textContent = `Deploying failed: ${failure.message}`;
      }
    } finally {
      deployButton.disabled = false;
    }
  }

  async function stopNode(node) {
    const question = `Stop ${node.layer} node ${short(node.node_id)}? It drains its queue, ` +
      "leaves the directory and its process ends; clients stop routing through it.";
    if (!window.confirm(question)) return;
    errors.replaceChildren();
    stopping.add(node.node_id);
    const button = nodesSlot.querySelector(`button[data-stop="${node.node_id}"]`);
    if (button) {
      button.disabled = true;
      button.textContent = "Stopping…";
    }
    try {
      await api(`/api/betanet/nodes/${encodeURIComponent(node.node_id)}`, { method: "DELETE", signal });
      announce(`Stopped ${node.layer} node ${short(node.node_id)}.`);
      if (node.node_id === selectedId) {
        await navigate("/betanet");
        return;
      }
      await refreshAfterChange();
    } catch (failure) {
      if (stopped) return;
      errors.replaceChildren(errorBox(`Stopping node ${short(node.node_id)} failed: ${failure.message}`));
    } finally {
      stopping.delete(node.node_id);
    }
  }

  // Screen readers hear changes of membership, not every refreshed figure.
  function announceChanges(nodes) {
    const now = new Map(nodes.map((n) => [n.node_id, n]));
    if (known) {
      const said = [];
      for (const [id, n] of now) {
        if (!known.has(id)) said.push(`${n.layer} node ${short(id)} joined`);
        else if (known.get(id) !== n.state) said.push(`${n.layer} node ${short(id)} is ${n.state}`);
      }
      for (const id of known.keys()) if (!now.has(id)) said.push(`node ${short(id)} left`);
      if (said.length) announce(`${said.join("; ")}.`);
    }
    known = new Map([...now].map(([id, n]) => [id, n.state]));
  }

  // The node, its state and its Stop button come first, so that a phone shows them
  // without scrolling the table sideways.
  function nodeColumns() {
    const columns = [
      { label: "Node", value: (n) => h("a", { href: nodeHref(n), "data-key": `link:${n.node_id}`,
        "aria-label": `${n.node_id.slice(0, 12)}, ${n.layer} node` }, h("code", {}, n.node_id.slice(0, 12))) },
      { label: "State", value: (n) => h("span", { class: stateClass(n.state) }, stateWords(n.state)) },
    ];
    if (operator) {
      columns.push({ label: "Actions", value: (n) => h("button", {
        type: "button", class: "button danger small", "data-key": `stop:${n.node_id}`,
        "aria-label": `Stop ${n.layer} node ${short(n.node_id)}`, "data-stop": n.node_id,
        disabled: stopping.has(n.node_id), onclick: () => stopNode(n),
      }, stopping.has(n.node_id) ? "Stopping…" : "Stop") });
    }
    columns.push(
      { label: "Layer", value: (n) => n.layer },
      { label: "Format", value: (n) => n.format },
      { label: "Address", value: (n) => n.address },
      { label: "In/s", value: (n) => num(n.packets_in_per_s, 0), num: true },
      { label: "Out/s", value: (n) => num(n.packets_out_per_s, 0), num: true },
      { label: "Drops/s", value: (n) => num(n.drops_per_s, 1), num: true },
      { label: "Queue", value: (n) => num(n.queue_depth, 0), num: true },
      { label: "p50 ms", value: (n) => latency(n, "latency_p50_ms"), num: true },
      { label: "p99 ms", value: (n) => latency(n, "latency_p99_ms"), num: true },
      { label: "Conns", value: (n) => num(n.connections, 0), num: true },
    );
    return columns;
  }

  function showStatus(status) {
    if (!status) {
      running = false;
      known = null;
      topologySummary.replaceChildren();
      totalsLine.textContent = "";
      replaceKeeping(graphSlot, emptyState());
      nodesCard.hidden = true;
      detail.hidden = true;
      if (deploy) deploy.hidden = true;
      return;
    }
    running = true;
    nodesCard.hidden = false;
    if (deploy) deploy.hidden = false;
    const nodes = status.nodes || [];
    const links = liveLinks(nodes, status.links || []);
    announceChanges(nodes);
    setTestnetFormat(nodes);
    const layers = Object.entries(status.layers || {}).filter(([, count]) => count)
      .map(([name, count]) => `${count} ${name}`).join(", ");
    const counts = new Map();
    for (const n of nodes) {
      if (n.state !== "up") counts.set(stateWords(n.state), (counts.get(stateWords(n.state)) || 0) + 1);
    }
    const notUp = [...counts].map(([words, count]) => `${count} ${words}`);
    topologySummary.textContent = `${nodes.length} nodes${layers ? ` (${layers})` : ""}` +
      `${notUp.length ? `, ${notUp.join(", ")}` : ""}; ` +
      `${links.length === 1 ? "1 link" : `${links.length} links`} carrying packets. ` +
      "Select a node for its charts and proofs.";
    replaceKeeping(graphSlot, nodes.length
      ? topologyGraph({ nodes, links, selected: selectedId, href: nodeHref })
      : h("p", { class: "empty" }, operator
        ? "The testnet has no nodes left. Deploy one below."
        : "The testnet has no nodes left; an operator can deploy some here."));
    if (!links.length && nodes.length) {
      graphSlot.append(h("p", { class: "muted", id: "no-traffic" }, "No packets are flowing: " +
        "send some with ", h("code", {}, "fogcore ping --count 100"), "."));
    }
    const order = (n) => LAYER_ORDER.indexOf(n.layer);
    const sorted = [...nodes].sort((a, b) => order(a) - order(b) || a.node_id.localeCompare(b.node_id));
    replaceKeeping(nodesSlot, table("Every node of the testnet", nodeColumns(), sorted, {
      id: "nodes-table",
      rowClass: (n) => (n.node_id === selectedId ? "selected" : null),
      rowAttrs: (n) => ({ "data-node-id": n.node_id }),
    }));
    const totals = status.totals || {};
    const moving = totals.packets_in_per_s > 0 || totals.packets_out_per_s > 0;
    const reasons = Object.entries(totals.drops_by_reason || {})
      .map(([reason, count]) => `${reason} ${num(count, 0)}`).join(", ");
    totalsLine.textContent = `Totals: ${num(totals.packets_in_per_s, 0)} packets/s in, ` +
      `${num(totals.packets_out_per_s, 0)} out, ${num(totals.drops_per_s, 1)} drops/s` +
      `${reasons ? ` (since start: ${reasons})` : ""}, queue ${num(totals.queue_depth, 0)}, ` +
      `mean delay ${moving || totals.mean_delay_ms > 0 ? `${num(totals.mean_delay_ms, 1)} ms` : "—"}` +
      `; as of ${when(status.time)}.`;
  }

  // The deploy form offers the testnet's own packet format: another gets no traffic.
  function setTestnetFormat(nodes) {
    const formats = [...new Set(nodes.map((n) => n.format))];
    const next = formats.length === 1 ? formats[0] : null;
    if (next === testnetFormat) return;
    testnetFormat = next;
    if (next) format.value = next;
    formatHelp.textContent = next ? `This testnet carries ${next} packets; a node of another ` +
      "format would get no traffic, so it is refused." : "";
  }

  async function refreshNode() {
    if (!detailView || !running || detailView.isGone()) return;
    try {
      const node = await api(`/api/betanet/nodes/${encodeURIComponent(selectedId)}`, { signal });
      if (stopped) return;
      detail.hidden = false;
      detailView.update(node);
    } catch (failure) {
      if (stopped) return;
      detail.hidden = false;
      detailView.gone(failure);
    }
  }

  async function refreshOnce() {
    try {
      const status = await api("/api/betanet/status", { signal });
      if (stopped) return;
      errors.replaceChildren();
      showStatus(status);
    } catch (failure) {
      if (stopped) return;
      if (failure.status === 404) showStatus(null);
      else errors.replaceChildren(errorBox(`Betanet status: ${failure.message}`));
      return;
    }
    await refreshNode();
  }

  let busy = null;
  function refresh() {
    // One refresh at a time; a caller during one waits for it.
    if (!busy) busy = refreshOnce().finally(() => { busy = null; });
    return busy;
  }

  // A refresh already under way may have read the status before the change.
  async function refreshAfterChange() {
    if (busy) await busy;
    await refresh();
  }

  // A hidden tab does not poll; it catches up as soon as it is shown again.
  function tick() {
    if (!document.hidden) refresh();
  }
  function onVisible() {
    if (!document.hidden) refresh();
  }
  document.addEventListener("visibilitychange", onVisible);
  timer = window.setInterval(tick, REFRESH_MS);
  const cleanup = () => {
    stopped = true;
    window.clearInterval(timer);
    document.removeEventListener("visibilitychange", onVisible);
    aborter.abort();
  };
  return refresh().then(() => cleanup, (error) => {
    cleanup();
    throw error;
  });
}
