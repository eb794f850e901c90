// Our own small SVG charts: a line chart (x numeric or time) and a horizontal grouped bar
// chart. Each chart is a <figure> holding an SVG with <title>/<desc> for screen readers,
// a legend, and the same numbers as a table in a <details> fallback. Colours come from
// the stylesheet (classes s0..s5), so the theme switches them.

import { h, num, s, withCode } from "./dom.js";

let counter = 0;
const PALETTE = 6;

/** Round numbers for axis ticks covering [0, max] (or [min, max]). */
export function niceTicks(min, max, count = 5) {
  if (!(max > min)) max = min + 1;
  const raw = (max - min) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((m) => m >= raw) || raw;
  const ticks = [];
  for (let v = Math.floor(min / step) * step; v <= max + step * 1e-9; v += step) {
    ticks.push(Number(v.toFixed(10)));
  }
  if (ticks[ticks.length - 1] < max) ticks.push(ticks[ticks.length - 1] + step);
  return ticks;
}

function frame(kind, title, desc) {
  counter += 1;
  const id = `chart-${kind}-${counter}`;
  return { id, titleId: `${id}-title`, descId: `${id}-desc` };
}

function emptyFigure(title, message) {
  return h("figure", { class: "chart-figure" },
    h("figcaption", {}, h("h3", {}, title)),
    h("p", { class: "empty" }, withCode(message || "No data yet.")));
}

function legend(series, dashed = []) {
  if (series.length < 2) return null;
  return h("ul", { class: "legend", "aria-hidden": "true" }, series.map((item, i) =>
    h("li", {}, h("span", { class: `swatch s${i % PALETTE}${dashed.includes(item.name)
      ? " dashed" : ""}` }), item.name)));
}

function dataTable(caption, head, rows) {
  return h("details", { class: "data", "data-key": `data:${caption}` },
    h("summary", { "data-key": `summary:${caption}` }, "Data table"),
    h("div", { class: "table-wrap" }, h("table", {},
      h("caption", { class: "visually-hidden" }, caption),
      h("thead", {}, h("tr", {}, head.map((label, i) =>
        h("th", { scope: "col", class: i ? "num" : null }, label)))),
      h("tbody", {}, rows.map((row) => h("tr", {}, row.map((cell, i) =>
        i ? h("td", { class: "num" }, cell) : h("th", { scope: "row" }, cell))))))));
}

/**
 * A line chart. options: title, desc, series [{name, points: [[x, y], ...]}], xLabel,
 * yLabel, xFormat(x) -> text, yFormat(y) -> text, empty (text when there is no point),
 * zeroBased (y axis from 0; default true), xLog (logarithmic x axis, for sizes spanning
 * decades), width (of the drawing in SVG units: smaller for charts shown small, so that
 * their text stays readable; default 640), dashed (names of series drawn dashed on top of
 * the others, so that a series they cover still shows through).
 */
export function lineChart(options) {
  const { title, series = [] } = options;
  const xFormat = options.xFormat || ((x) => num(x, 2));
  const yFormat = options.yFormat || ((y) => num(y, 1));
  const points = series.flatMap((item) => item.points);
  if (!points.length) return emptyFigure(title, options.empty);
  const dashed = options.dashed || [];
  const ids = frame("line", title);
  const W = options.width || 640; const H = Math.round(W * 0.375);
  // The right margin leaves room for the last x label ("1,000"), centred on the edge.
  const M = { left: 58, right: 24, top: 24, bottom: 40 };
  const log = Boolean(options.xLog) && points.every((p) => p[0] > 0);
  const tx = log ? Math.log10 : (x) => x;
  const xs = points.map((p) => tx(p[0])); const ys = points.map((p) => p[1]);
  let xMin = Math.min(...xs); let xMax = Math.max(...xs);
  const single = xMin === xMax;
  if (single) { xMin -= 1; xMax += 1; }
  const yTicks = niceTicks(options.zeroBased === false ? Math.min(...ys) : Math.min(0, ...ys),
    Math.max(...ys));
  const yMin = yTicks[0]; const yMax = yTicks[yTicks.length - 1];
  const px = (x) => M.left + ((tx(x) - xMin) / (xMax - xMin)) * (W - M.left - M.right);
  const py = (y) => H - M.bottom - ((y - yMin) / (yMax - yMin || 1)) * (H - M.top - M.bottom);
  // A log axis, or a few whole-number x values (workers, connections), ticks at the
  // measured values themselves.
  const distinct = [...new Set(points.map((p) => p[0]))];
  const discrete = distinct.length <= 12 && distinct.every(Number.isInteger);
  const xTicks = log || (discrete && !single) ? distinct
    : (single ? [points[0][0]] : niceTicks(xMin, xMax, 5).filter((x) => x >= xMin && x <= xMax));

  const svg = s("svg", {
    class: `chart w${W}`, viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-labelledby": `${ids.titleId} ${ids.descId}`,
  },
  s("title", { id: ids.titleId }, title),
  s("desc", { id: ids.descId }, options.desc ||
    `${series.map((item) => item.name).join(", ")} by ${options.xLabel || "x"}`),
  yTicks.map((y) => [
    s("line", { class: "gridline", x1: M.left, x2: W - M.right, y1: py(y), y2: py(y) }),
    s("text", { x: M.left - 6, y: py(y) + 4, "text-anchor": "end" }, yFormat(y)),
  ]),
  xTicks.map((x) => s("text", { x: px(x), y: H - M.bottom + 16, "text-anchor": "middle" },
    xFormat(x))),
  s("line", { class: "axis", x1: M.left, x2: W - M.right, y1: H - M.bottom, y2: H - M.bottom }),
  s("line", { class: "axis", x1: M.left, x2: M.left, y1: M.top, y2: H - M.bottom }),
  options.xLabel ? s("text", { x: (M.left + W - M.right) / 2, y: H - 6, "text-anchor": "middle" },
    options.xLabel) : null,
  options.yLabel ? s("text", { x: 4, y: 12 }, options.yLabel) : null,
  // Dashed series last: drawn over the solid ones, which show through their gaps.
  [...series.entries()].sort(([, a], [, b]) => dashed.includes(a.name) - dashed.includes(b.name))
    .map(([i, item]) => {
    const sorted = [...item.points].sort((a, b) => a[0] - b[0]);
    const d = sorted.map((p, j) => `${j ? "L" : "M"}${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`)
      .join("");
    return [
      s("path", { class: `line s${i % PALETTE}${dashed.includes(item.name) ? " dashed" : ""}`, d }),
      sorted.length <= 24 ? sorted.map((p) => s("circle", {
        class: `s${i % PALETTE}`, cx: px(p[0]), cy: py(p[1]), r: 3,
      }, s("title", {}, `${item.name}: ${yFormat(p[1])} at ${xFormat(p[0])}`))) : null,
    ];
  }));

  // The table lists every x once, one column per series.
  const allX = [...new Set(points.map((p) => p[0]))].sort((a, b) => a - b);
  const rows = allX.map((x) => [xFormat(x), ...series.map((item) => {
    const hit = item.points.find((p) => p[0] === x);
    return hit ? yFormat(hit[1]) : "–";
  })]);
  return h("figure", { class: "chart-figure", id: ids.id },
    h("figcaption", {}, h("h3", {}, title)),
    svg, legend(series, dashed),
    dataTable(title, [options.xLabel || "x", ...series.map((item) => item.name)], rows));
}

/**
 * A horizontal grouped bar chart. options: title, desc, categories [names], series
 * [{name, values: [number | null per category]}], valueLabel, format(v) -> text, empty,
 * log (logarithmic value axis, for measures spanning decades), tickFormat(v) -> text (axis
 * labels; default format).
 */
export function barChart(options) {
  const { title, categories = [] } = options;
  // A series with no value at all would stand in the legend with no bar.
  const series = (options.series || []).filter((item) =>
    item.values.some((v) => v !== null && v !== undefined));
  const format = options.format || ((v) => num(v, 1));
  const values = series.flatMap((item) => item.values).filter((v) => v !== null && v !== undefined);
  if (!categories.length || !values.length) return emptyFigure(title, options.empty);
  const ids = frame("bar", title);
  const W = 640;
  const M = { left: 190, right: 70, top: 8, bottom: 34 };
  const bar = 16; const gap = 10;
  const band = bar * series.length + gap;
  const H = M.top + M.bottom + band * categories.length;
  // A log scale keeps measures of very different rates readable side by side (a linear
  // one flattens everything under the fastest).
  const log = Boolean(options.log) && values.every((v) => v > 0);
  let ticks; let px;
  if (log) {
    const lo = Math.floor(Math.log10(Math.min(...values)));
    const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(...values))));
    ticks = Array.from({ length: hi - lo + 1 }, (_, i) => 10 ** (lo + i));
    px = (v) => M.left + ((Math.log10(v) - lo) / (hi - lo)) * (W - M.left - M.right);
  } else {
    ticks = niceTicks(0, Math.max(...values), 4);
    const vMax = ticks[ticks.length - 1] || 1;
    px = (v) => M.left + (v / vMax) * (W - M.left - M.right);
  }
  const axisFormat = options.tickFormat || format;
  // On a phone the labels are drawn larger (panel.css), so fewer characters fit.
  const room = window.matchMedia("(max-width: 40rem)").matches ? 15 : 28;
  const label = (text) => (text.length > room ? `${text.slice(0, room - 1)}…` : text);

  const svg = s("svg", {
    class: `chart w${W}`, viewBox: `0 0 ${W} ${H}`, role: "img",
    "aria-labelledby": `${ids.titleId} ${ids.descId}`,
  },
  s("title", { id: ids.titleId }, title),
  s("desc", { id: ids.descId }, options.desc ||
    `${options.valueLabel || "value"} for ${categories.join(", ")}`),
  ticks.map((v) => [
    s("line", { class: "gridline", x1: px(v), x2: px(v), y1: M.top, y2: H - M.bottom }),
    s("text", { x: px(v), y: H - M.bottom + 15, "text-anchor": "middle" }, axisFormat(v)),
  ]),
  options.valueLabel ? s("text", { x: (M.left + W - M.right) / 2, y: H - 4,
    "text-anchor": "middle" }, options.valueLabel) : null,
  categories.map((name, c) => {
    const top = M.top + c * band;
    return [
      s("text", { x: M.left - 8, y: top + (band - gap) / 2 + 4, "text-anchor": "end" },
        label(name), s("title", {}, name)),
      series.map((item, i) => {
        const v = item.values[c];
        if (v === null || v === undefined) return null;
        const y = top + i * bar;
        return [
          s("rect", { class: `s${i % PALETTE}`, x: M.left, y, height: bar - 3,
            width: Math.max(1, px(v) - M.left) },
          s("title", {}, `${name}, ${item.name}: ${format(v)}`)),
          s("text", { x: px(v) + 4, y: y + bar - 6 }, format(v)),
        ];
      }),
    ];
  }),
  s("line", { class: "axis", x1: M.left, x2: M.left, y1: M.top, y2: H - M.bottom }));

  const rows = categories.map((name, c) => [name, ...series.map((item) =>
    (item.values[c] === null || item.values[c] === undefined ? "–" : format(item.values[c])))]);
  return h("figure", { class: "chart-figure", id: ids.id },
    h("figcaption", {}, h("h3", {}, title)),
    svg, legend(series),
    dataTable(title, [options.categoryLabel || "Measure", ...series.map((item) => item.name)], rows));
}
