// Entry point: the layout around the pages (menu, theme, account) and the router.

import {
  api, clearSession, currentUser, hasRole, setUnauthorizedHandler, token,
} from "./api.js";
import { h } from "./dom.js";
import { AREAS } from "./nav.js";
import { logoutTo, navigate, onRoute, startRouter } from "./router.js";

const THEME_KEY = "fogcore.theme";

function systemDark() {
  return window.matchMedia("(prefers-color-scheme: dark)").matches;
}

function applyTheme(choice) {
  const root = document.documentElement;
  if (choice) root.setAttribute("data-theme", choice);
  else root.removeAttribute("data-theme");
  const dark = choice ? choice === "dark" : systemDark();
  const button = document.getElementById("theme-toggle");
  button.setAttribute("aria-pressed", String(dark));
  button.textContent = "Dark theme";
  button.title = dark ? "Switch to the light theme" : "Switch to the dark theme";
}

function setupTheme() {
  let choice = window.localStorage.getItem(THEME_KEY);
  applyTheme(choice);
  document.getElementById("theme-toggle").addEventListener("click", () => {
    const dark = choice ? choice === "dark" : systemDark();
    choice = dark ? "light" : "dark";
    window.localStorage.setItem(THEME_KEY, choice);
    applyTheme(choice);
  });
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", () => {
    applyTheme(choice);
  });
}

function renderChrome(pathname) {
  const user = currentUser();
  const loggedIn = Boolean(token());
  const nav = document.getElementById("nav");
  const first = `/${pathname.split("/")[1] || ""}`;
  const visible = AREAS.filter((a) => !a.role || hasRole(a.role));
  nav.replaceChildren(loggedIn
    ? h("ul", {}, visible.map((area) => h("li", {},
      h("a", { href: area.path, "aria-current": area.path === first ? "page" : null },
        area.label))))
    : "");
  document.getElementById("whoami").textContent =
    loggedIn && user ? `${user.username} (${user.role})` : "";
  document.getElementById("logout").hidden = !loggedIn;
}

async function logout() {
  try {
    await api("/api/auth/logout", { method: "POST" });
  } catch {
    // The session is dropped locally whatever the server says (it may have expired).
  }
  clearSession();
  navigate("/login?reason=" + encodeURIComponent("You have logged out."), { replace: true });
}

setupTheme();
document.getElementById("logout").addEventListener("click", logout);
setUnauthorizedHandler(() => logoutTo("Your session has ended. Log in again."));
onRoute(renderChrome);
startRouter(document.getElementById("main"));
