// Client-side routing over the History API: one route per area (nav.js), the first path
// segment picks the page module, the rest is handed to the page.

import { clearSession, token } from "./api.js";
import { announce, errorBox, h } from "./dom.js";
import { AREAS, HOME, PUBLIC_PAGES, ownsSubpath } from "./nav.js";

let main = null;
let cleanup = null;
let generation = 0;
let firstRender = true;
const listeners = [];

/** Call `fn(path)` after every page change (the layout updates the menu with it). */
export function onRoute(fn) {
  listeners.push(fn);
}

function find(pathname) {
  const first = `/${pathname.split("/")[1] || ""}`;
  const area = AREAS.find((a) => a.path === first);
  if (area) return { page: area, public: false };
  const open = PUBLIC_PAGES.find((p) => p.path === first);
  if (open) return { page: open, public: true };
  return null;
}

// The path's segments after the page's own ("/betanet/nodes/ab" → ["nodes", "ab"]).
function restOf(pathname) {
  return pathname.split("/").slice(2).filter(Boolean).map(decodeURIComponent);
}

/** Go to `url` (same origin) and render its page. */
export function navigate(url, { replace = false, state = null } = {}) {
  const target = new URL(url, window.location.origin);
  const href = target.pathname + target.search + target.hash;
  if (replace) window.history.replaceState(state, "", href);
  else window.history.pushState(state, "", href);
  return render();
}

function notFound(pathname) {
  return {
    title: "Not found",
    render(root) {
      root.append(
        h("h1", {}, "Page not found"),
        h("p", {}, `The panel has no page at ${pathname}. `,
          h("a", { href: HOME }, "Go to the dashboard"), "."),
      );
    },
  };
}

async function render() {
  const mine = ++generation;
  const { pathname, search } = window.location;
  if (pathname === "/" || pathname === "") return navigate(HOME, { replace: true });
  const found = find(pathname);
  if (found && !found.public && !token()) {
    const next = encodeURIComponent(pathname + search);
    return navigate(`/login?next=${next}`, { replace: true });
  }
  if (found && found.public && found.page.path === "/login" && token()) {
    return navigate(HOME, { replace: true });
  }
  if (cleanup) {
    try {
      cleanup();
    } catch (error) {
      console.warn("page cleanup failed", error);
    }
    cleanup = null;
  }
  document.documentElement.removeAttribute("data-page-ready");
  let module;
  try {
    module = found && ownsSubpath(found.page, restOf(pathname))
      ? await found.page.load() : notFound(pathname);
  } catch {
    module = null;
  }
  if (mine !== generation) return undefined; // a newer navigation won
  main.replaceChildren();
  const title = module ? module.title : "Error";
  document.title = `${title} · fogcore`;
  for (const fn of listeners) fn(pathname);
  if (!firstRender) {
    main.focus();
    announce(`${title} page`);
  }
  firstRender = false;
  if (!module) {
    main.append(h("h1", {}, "This page failed to load"),
      errorBox("The page's code could not be loaded. Reload the panel to try again."));
    return undefined;
  }
  const rest = restOf(pathname);
  const params = new URLSearchParams(search);
  try {
    cleanup = (await module.render(main, { path: pathname, rest, params, navigate })) || null;
  } catch (error) {
    main.append(errorBox(error));
  }
  if (mine === generation) {
    document.documentElement.setAttribute("data-page-ready", pathname);
    performance.mark(`page-ready ${pathname}`);
  }
  return undefined;
}

function onClick(event) {
  if (event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const link = event.target.closest("a");
  // getAttribute, not .target: an SVG link's .target is an object, always truthy, which
  // would turn every click on a topology node into a full page load.
  if (!link || link.getAttribute("target") || link.hasAttribute("download")) return;
  const href = link.getAttribute("href") || link.getAttribute("xlink:href");
  if (!href || !href.startsWith("/") || href.startsWith("//")) return;
  const url = new URL(href, window.location.origin);
  if (url.pathname.startsWith("/api/") || url.pathname.startsWith("/static/")) return;
  if (!find(url.pathname) && url.pathname !== "/") return;
  event.preventDefault();
  navigate(href);
}

/** Start routing inside `root` (the <main> element). */
export function startRouter(root) {
  main = root;
  document.addEventListener("click", onClick);
  window.addEventListener("popstate", () => render());
  return render();
}

/** End the session locally and go to the login page with `reason` shown there. */
export function logoutTo(reason) {
  clearSession();
  const next = window.location.pathname.startsWith("/login")
    ? "" : `&next=${encodeURIComponent(window.location.pathname + window.location.search)}`;
  return navigate(`/login?reason=${encodeURIComponent(reason || "")}${next}`, { replace: true });
}
