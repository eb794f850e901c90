// The Betanet topology as an SVG of layered columns: one column per layer in path order,
// a circle per node (a link to its page, so it is reachable by keyboard) and a line per
// link whose width grows with its packet rate.

import { num, s } from "./dom.js";

/** Layers in the order packets cross them. */
export const LAYER_ORDER = ["entry", "mix", "exit", "gateway"];

let counter = 0;

/**
 * options: nodes [{node_id, layer, state, packets_in_per_s, ...}], links [{from, to,
 * packets_per_s}], selected (node id), href(node) -> URL.
 */
export function topologyGraph({ nodes, links = [], selected = null, href }) {
  counter += 1;
  const titleId = `graph-${counter}-title`;
  const descId = `graph-${counter}-desc`;
  const layers = [...LAYER_ORDER, ...new Set(nodes.map((n) => n.layer)
    .filter((layer) => !LAYER_ORDER.includes(layer)))]
    .filter((layer) => nodes.some((n) => n.layer === layer));
  const columns = layers.map((layer) => nodes.filter((n) => n.layer === layer)
    .sort((a, b) => a.node_id.localeCompare(b.node_id)));
  const tallest = Math.max(1, ...columns.map((c) => c.length));
  const W = 800; const rowH = 64; const top = 40;
  const H = top + tallest * rowH + 10;
  const colW = W / Math.max(1, layers.length);
  const place = new Map();
  columns.forEach((column, c) => {
    const x = colW * c + colW / 2;
    const offset = top + ((tallest - column.length) * rowH) / 2;
    column.forEach((node, r) => place.set(node.node_id, { x, y: offset + r * rowH + rowH / 2 }));
  });
  const maxRate = Math.max(1, ...links.map((l) => l.packets_per_s || 0));
  const up = nodes.filter((n) => n.state === "up").length;

  return s("svg", {
    class: "graph", viewBox: `0 0 ${W} ${H}`, role: "group",
    "aria-labelledby": `${titleId} ${descId}`,
  },
  s("title", { id: titleId }, "Betanet topology"),
  s("desc", { id: descId }, `${nodes.length} nodes (${up} up) in ${layers.length} layers: ` +
    layers.map((layer, i) => `${columns[i].length} ${layer}`).join(", ") +
    `; ${links.length} links. Each node is a link to its details.`),
  layers.map((layer, c) => s("text", { class: "layer-label", x: colW * c + colW / 2, y: 20,
    "text-anchor": "middle" }, `${layer} (${columns[c].length})`)),
  s("g", { "aria-hidden": "true" }, links.map((link) => {
    const a = place.get(link.from); const b = place.get(link.to);
    if (!a || !b) return null;
    const width = 1 + 5 * Math.sqrt((link.packets_per_s || 0) / maxRate);
    return s("line", { class: "link", x1: a.x, y1: a.y, x2: b.x, y2: b.y,
      "stroke-width": width.toFixed(2), "data-from": link.from, "data-to": link.to });
  })),
  nodes.map((node) => {
    const p = place.get(node.node_id);
    const short = node.node_id.slice(0, 8);
    const label = `${node.layer} node ${short}, ${node.state}, ` +
      `${num(node.packets_in_per_s, 0)} packets per second in`;
    const classes = ["node", node.state === "up" ? "up" : "down",
      node.node_id === selected ? "selected" : ""].join(" ").trim();
    return s("a", { href: href(node), class: classes, "aria-label": label,
      "data-node-id": node.node_id, "data-key": `graph:${node.node_id}` },
    s("circle", { cx: p.x, cy: p.y, r: 14 }),
    s("text", { x: p.x, y: p.y + 28, "text-anchor": "middle" }, short));
  }));
}
