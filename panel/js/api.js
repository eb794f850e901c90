// The panel's only door to the API: same origin, bearer token from this tab's session,
// and every failure turned into an ApiError whose message is a sentence for people.

const TOKEN_KEY = "fogcore.token";
const USER_KEY = "fogcore.user";

/** An API call that failed; `message` says what happened in words. */
export class ApiError extends Error {
  constructor(status, message, detail = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = detail.code || null;
    this.requestId = detail.request_id || null;
    this.fields = detail.fields || [];
  }
}

// The session token lives in sessionStorage: it survives reloads of this tab and is gone
// when the tab closes.
export function token() {
  return window.sessionStorage.getItem(TOKEN_KEY);
}

export function currentUser() {
  const raw = window.sessionStorage.getItem(USER_KEY);
  try {
    return raw ? JSON.parse(raw) : null;
  } catch {
    return null;
  }
}

export function saveSession(sessionToken, user) {
  window.sessionStorage.setItem(TOKEN_KEY, sessionToken);
  window.sessionStorage.setItem(USER_KEY, JSON.stringify(user));
}

export function clearSession() {
  window.sessionStorage.removeItem(TOKEN_KEY);
  window.sessionStorage.removeItem(USER_KEY);
}

const ROLE_ORDER = { viewer: 0, operator: 1, admin: 2 };

/** Whether the logged-in user has `role` or a stronger one. */
export function hasRole(role) {
  const user = currentUser();
  return Boolean(user) && ROLE_ORDER[user.role] >= ROLE_ORDER[role];
}

// What a status means when the API's own message needs context.
const STATUS_WORDS = {
  400: "The request was malformed",
  401: "You are not logged in, or your session has ended",
  403: "Your account's role does not allow this",
  404: "Not found",
  405: "The API does not allow this method here",
  409: "This conflicts with the current state",
  413: "The request is too large",
  415: "The request was not JSON",
  422: "Some input is not valid",
  429: "Too many requests",
  500: "The API failed with an internal error",
  502: "The API is unreachable behind its proxy",
  503: "The database or service is unavailable",
};

function describe(status, body, retryAfter) {
  const error = body && body.error ? body.error : {};
  let message = STATUS_WORDS[status] || `The API answered with status ${status}`;
  if (error.message) {
    message = `${message}: ${error.message}`;
  }
  if (error.fields && error.fields.length) {
    const parts = error.fields.map((f) => `${f.field}: ${f.message}`);
    message = `${message} (${parts.join("; ")})`;
  }
  if (status === 429 && retryAfter) {
    message = `${message}. Try again in ${retryAfter} s`;
  }
  if (error.request_id && status >= 500) {
    message = `${message}. Request id ${error.request_id}`;
  }
  return new ApiError(status, `${message}.`.replace(/\.\.$/, "."), error);
}

let onUnauthorized = null;

/** Called (once per failure) when an authenticated call answers 401. */
export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

/**
 * Call the API. `path` is same-origin ("/api/..."); `body` is sent as JSON. Resolves to
 * the parsed JSON (null for 204); rejects with ApiError. `auth: false` sends no token.
 */
export async function api(path, { method = "GET", body, auth = true, signal } = {}) {
  const headers = { Accept: "application/json" };
  const sessionToken = auth ? token() : null;
  if (sessionToken) headers.Authorization = `Bearer ${sessionToken}`;
  const init = { method, headers, signal, credentials: "omit", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error && error.name === "AbortError") throw error;
    throw new ApiError(0, "Cannot reach the fogcore API. Is `fogcore serve` (or `fogcore up`) running?");
  }
  if (response.status === 204) return null;
  let parsed = null;
  const type = response.headers.get("content-type") || "";
  if (type.includes("application/json")) {
    try {
      parsed = await response.json();
    } catch {
      parsed = null;
    }
  }
  if (!response.ok) {
    const error = describe(response.status, parsed, response.headers.get("retry-after"));
    if (response.status === 401 && sessionToken && onUnauthorized) onUnauthorized(error);
    throw error;
  }
  return parsed;
}
