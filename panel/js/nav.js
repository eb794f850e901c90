// The panel's areas, read from the manifest `pages.json` beside `js/`, which the API reads
// too (it serves the panel's shell for every page path listed there). A new area is one
// entry in the manifest and one module under pages/.
//
// Manifest entry fields: path (first URL segment), title (menu text), module (the page
// module, relative to the panel folder), subpaths (deeper paths the page shows, `*` for one
// segment: "/nodes/*"; any other deeper path is "not found"), menu (listed in the
// navigation), public (reachable without logging in), role (weakest role that sees the
// area; omitted: any logged-in user).

const manifest = await fetch(new URL("../pages.json", import.meta.url))
  .then((response) => {
    if (!response.ok) throw new Error(`pages.json: HTTP ${response.status}`);
    return response.json();
  });

function area(entry) {
  const url = new URL(`../${entry.module}`, import.meta.url).href;
  return { path: entry.path, label: entry.title, role: entry.role || null,
    subpaths: entry.subpaths || [], load: () => import(url) };
}

/** Whether `rest` (the path's segments after the page's own) is a subpath of `page`. */
export function ownsSubpath(page, rest) {
  if (!rest.length) return true;
  return page.subpaths.some((pattern) => {
    const parts = pattern.split("/").filter(Boolean);
    return parts.length === rest.length &&
      parts.every((part, i) => part === "*" ? rest[i] !== "" : part === rest[i]);
  });
}

/** Areas shown in the navigation, in menu order. */
export const AREAS = manifest.pages.filter((p) => p.menu && !p.public).map(area);

/** Pages reachable without logging in; not in the menu. */
export const PUBLIC_PAGES = manifest.pages.filter((p) => p.public).map(area);

/** Where "/" and a fresh login lead. */
export const HOME = manifest.home;
