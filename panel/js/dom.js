// Small DOM helpers: build elements without innerHTML (no markup injection from data) and
// format numbers for people.

const SVG_NS = "http://www.w3.org/2000/svg";

function build(el, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "text") {
      el.textContent = String(value);
    } else if (value === true) {
      el.setAttribute(name, "");
    } else {
      el.setAttribute(name, String(value));
    }
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** An HTML element: h("button", {type: "button", onclick: fn}, "Label"). */
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

/** An SVG element, same calling convention as h(). */
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

/** A number with at most `digits` decimals and thousands separators; "–" when missing. */
export function num(value, digits = 1) {
  if (value === undefined || value === null || Number.isNaN(value)) return "–";
  return Number(value).toLocaleString("en", { maximumFractionDigits: digits });
}

/** `text` with its `backticked` parts as <code> elements (an array for h()). */
export function withCode(text) {
  return String(text).split("`").map((part, i) => (i % 2 ? h("code", {}, part) : part));
}

/** A time (seconds since the epoch) as local date and time. */
export function when(seconds) {
  if (!seconds) return "–";
  return new Date(seconds * 1000).toLocaleString("en-GB", {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
    second: "2-digit",
  });
}

/** A duration in seconds, short. */
export function duration(seconds) {
  if (seconds === undefined || seconds === null) return "–";
  if (seconds < 60) return `${num(seconds, 1)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(seconds / 3600)} h ${Math.round((seconds % 3600) / 60)} min`;
}

/** Tell screen-reader users something happened (polite live region in index.html). */
export function announce(text) {
  const region = document.getElementById("announcer");
  if (!region) return;
  region.textContent = "";
  // A fresh node is read even when the text repeats.
  window.setTimeout(() => { region.textContent = text; }, 30);
}

/** An element showing an error in words (role=alert, so it is read at once). */
export function errorBox(error) {
  return h("div", { class: "alert", role: "alert" }, error ? String(error.message || error) : "");
}

/**
 * Replace `container`'s children without losing the reader's place: the focused element
 * and the open <details> are found again in the new children by their `data-key`, so a
 * periodic refresh neither throws keyboard focus back to the page nor closes a data
 * table someone opened.
 */
export function replaceKeeping(container, ...children) {
  const active = document.activeElement;
  const focusKey = active && active !== container && container.contains(active)
    ? active.getAttribute("data-key") : null;
  const open = [...container.querySelectorAll("details[data-key]")]
    .filter((d) => d.open).map((d) => d.getAttribute("data-key"));
  container.replaceChildren(...children);
  const find = (key) => [...container.querySelectorAll("[data-key]")]
    .find((el) => el.getAttribute("data-key") === key);
  for (const key of open) {
    const details = find(key);
    if (details) details.open = true;
  }
  if (focusKey) {
    const again = find(focusKey);
    if (again) again.focus({ preventScroll: true });
  }
}

/**
 * A data table: columns [{label, value(row), num?}], rows. options: rowClass(row),
 * rowAttrs(row) -> attributes, id (of the table), rowHeaders.
 */
export function table(caption, columns, rows, options = {}) {
  return h("div", { class: "table-wrap" },
    h("table", { id: options.id },
      caption ? h("caption", {}, caption) : null,
      h("thead", {}, h("tr", {}, columns.map((c) =>
        h("th", { scope: "col", class: c.num ? "num" : null }, c.label)))),
      h("tbody", {}, rows.map((row) =>
        h("tr", { class: options.rowClass ? options.rowClass(row) : null,
          ...(options.rowAttrs ? options.rowAttrs(row) : {}) },
          columns.map((c, i) => {
            const value = c.value(row);
            const cell = i === 0 && options.rowHeaders ? "th" : "td";
            return h(cell, { class: c.num ? "num" : null, scope: cell === "th" ? "row" : null },
              value);
          }))))));
}
