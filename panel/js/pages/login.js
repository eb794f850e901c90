// Log in with a username and password; the session token is kept for this tab.

import { api, saveSession } from "../api.js";
import { h } from "../dom.js";
import { HOME } from "../nav.js";

export const title = "Log in";

// Only same-origin panel paths are followed after login (no open redirect).
function safeNext(value) {
  if (!value || !value.startsWith("/") || value.startsWith("//") || value.startsWith("/login")) {
    return HOME;
  }
  return value;
}

export function render(main, { params, navigate }) {
  const error = h("div", { class: "alert", role: "alert", id: "login-error" });
  const reason = params.get("reason");
  const username = h("input", { id: "username", name: "username", autocomplete: "username",
    required: true, maxlength: 64 });
  const password = h("input", { id: "password", name: "password", type: "password",
    autocomplete: "current-password", required: true, maxlength: 1024 });
  const submit = h("button", { type: "submit", class: "button" }, "Log in");

  async function onSubmit(event) {
    event.preventDefault();
    error.textContent = "";
    submit.disabled = true;
    submit.textContent = "Logging in…";
    try {
      const answer = await api("/api/auth/login", {
        method: "POST", auth: false,
        body: { username: username.value.trim(), password: password.value },
      });
      saveSession(answer.token, answer.user);
      await navigate(safeNext(params.get("next")), { replace: true });
    } catch (failure) {
      error.textContent = failure.status === 401
        ? "Wrong username or password. Check both and try again."
        : failure.message;
      password.value = "";
      password.focus();
    } finally {
      submit.disabled = false;
      submit.textContent = "Log in";
    }
  }

  main.append(h("section", { class: "card login", "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, "Log in to fogcore"),
    reason ? h("p", { class: "notice", role: "status" }, reason) : null,
    h("form", { class: "form", onsubmit: onSubmit, novalidate: false },
      h("div", { class: "field" }, h("label", { for: "username" }, "Username"), username),
      h("div", { class: "field" }, h("label", { for: "password" }, "Password"), password),
      error,
      submit),
    h("p", { class: "muted" }, "No account yet? Create one on the server with ",
      h("code", {}, "fogcore admin create NAME"), ".")));
  username.focus();
}
