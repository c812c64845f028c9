// Talking to the openflr server: JSON requests with the session cookie, the CSRF header on every
// request that changes something, EM Error bodies turned into ApiError.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** Thrown (and ignored by callers) once the logon session has gone: the page shows the logon form. */
export class SessionEnded extends ApiError {}

const state = {
  csrf: "",
  onSessionEnded: () => {},
};

export function setCsrf(token) {
  state.csrf = token || "";
}

export function csrf() {
  return state.csrf;
}

export function onSessionEnded(callback) {
  state.onSessionEnded = callback;
}

/** The path and query of an absolute Href from the API: requests stay on this origin. */
export function local(href) {
  const url = new URL(href, location.href);
  return url.pathname + url.search;
}

/** Path of an Href without its query. */
export function pathOf(href) {
  return new URL(href, location.href).pathname;
}

/** An Href's link of the given relation from an EM object's Links. */
export function link(obj, rel, type) {
  for (const l of obj?.Links || []) {
    if (l.Rel === rel && (!type || l.Type === type)) return l.Href;
  }
  return null;
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    if (body && typeof body.Message === "string" && body.Message) return body.Message;
  } catch {
    // not JSON
  }
  return `${response.status} ${response.statusText || "error"}`;
}

/** A request to the server. `auth: false` for calls where 401 is an answer (logon, start-up). */
export async function api(method, url, { body, auth = true, raw = false } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET" && method !== "HEAD") headers["X-Openflr-Csrf"] = state.csrf;
  const init = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, init);
  } catch (err) {
    throw new ApiError(0, `The server could not be reached (${err.message}).`);
  }
  if (response.ok) {
    if (raw) return response;
    if (response.status === 204) return null;
    const type = response.headers.get("Content-Type") || "";
    return type.includes("json") ? response.json() : null;
  }
  const message = await errorMessage(response);
  if (response.status === 401 && auth) {
    state.onSessionEnded(message);
    throw new SessionEnded(401, message);
  }
  throw new ApiError(response.status, message);
}

export const get = (url, options) => api("GET", url, options);
export const post = (url, body, options) => api("POST", url, { ...options, body });
export const del = (url, options) => api("DELETE", url, options);

/** Wait until a task is Finished; `progress(task)` is called with each answer. */
export async function waitForTask(task, progress = () => {}, interval = 500) {
  let current = task;
  const href = local(task.Href);
  let delay = interval;
  while (current.State !== "Finished") {
    await new Promise((resolve) => setTimeout(resolve, delay));
    current = await get(href);
    progress(current);
    delay = Math.min(delay * 1.5, 3000);
  }
  return current;
}
