// The panel's areas: ONE entry per area, in menu order. A new area is one entry here and
// one module under pages/. The API serves the panel's shell for every `path` listed in
// this file (it reads the `path: "/..."` entries), so keep each path on its own line.
//
// Entry fields: path (first URL segment), label (menu text), load (the page module),
// role (weakest role that sees the area; omitted: any logged-in user).

/** Areas shown in the navigation. */
export const AREAS = [
  { path: "/dashboard", label: "Dashboard", load: () => import("./pages/dashboard.js") },
  { path: "/betanet", label: "Betanet", load: () => import("./pages/betanet.js") },
  { path: "/benchmarks", label: "Benchmarks", load: () => import("./pages/benchmarks.js") },
];

/** Pages reachable without logging in; not in the menu. */
export const PUBLIC_PAGES = [
  { path: "/login", label: "Log in", load: () => import("./pages/login.js") },
];

/** Where "/" and a fresh login lead. */
export const HOME = "/dashboard";
