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

// CodePipeline operations that exist only on the AWS JSON endpoint (POST / with X-Amz-Target).
export async function codepipeline(operation, body) {
  let response;
  try {
    response = await fetch("/", {
      method: "POST",
      headers: { "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": `CodePipeline_20150709.${operation}` },
      body: JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(0, "NetworkError", `The control plane did not answer (${err.message}). Is it running?`);
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const kind = (data.__type || `HTTP ${response.status}`).split("#").pop();
    throw new ApiError(response.status, kind, `${kind}: ${data.message || data.Message || "the request was refused"}`);
  }
  return data;
}
