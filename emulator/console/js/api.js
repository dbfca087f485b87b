// The management API, with errors turned into something a page can show.

export class ApiError extends Error {
  constructor(status, kind, message) {
    super(message);
    this.status = status;
    this.kind = kind;
  }
  get notFound() {
    return this.status === 404;
  }
}

async function call(method, path, body) {
  const init = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(`/api${path}`, init);
  } catch (err) {
    throw new ApiError(0, "NetworkError", `The control plane did not answer (${err.message}). Is it running?`);
  }
  const text = await response.text();
  let data = {};
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    data = { message: text };
  }
  if (!response.ok) {
    const message = data.message || (typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail || data));
    throw new ApiError(response.status, data.error || `HTTP ${response.status}`, message);
  }
  return data;
}

export const get = (path) => call("GET", path);
export const post = (path, body = {}) => call("POST", path, body);
