// The JSON endpoints of ui/app.py.

export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.message ? body.message : `HTTP ${status}`);
    this.status = status;
    this.field = body ? body.field : null;
  }
}

export async function get(path, params = {}) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    for (const item of Array.isArray(value) ? value : [value]) query.append(name, String(item));
  }
  const text = query.toString();
  const response = await fetch(text ? `${path}?${text}` : path, { credentials: "same-origin" });
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

export const api = {
  info: () => get("/api/info"),
  runs: (filter, orderBy, maxResults) => get("/api/runs", { filter, order_by: orderBy, max_results: maxResults }),
  run: (runId) => get(`/api/runs/${encodeURIComponent(runId)}`),
  logs: (runId, levels, limit) => get(`/api/runs/${encodeURIComponent(runId)}/logs`, { level: levels, limit }),
  history: (run, key, start, end, maxPoints) =>
    get("/api/history", { run, key, start_step: start, end_step: end, max_points: maxPoints }),
  compare: (runs, key, start, end, maxPoints) =>
    get("/api/compare", { run: runs, key, start_step: start, end_step: end, max_points: maxPoints }),
};
