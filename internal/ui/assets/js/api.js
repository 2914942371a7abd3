// The JSON API, with the token the user pasted. The token lives in this
// tab's sessionStorage only: it is gone when the tab closes, and other
// sites cannot read it.

const KEY = 'backbone.token';

export class APIError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

let onUnauthorized = () => {};

export function setUnauthorizedHandler(f) {
  onUnauthorized = f;
}

export function token() {
  return sessionStorage.getItem(KEY) || '';
}

export function setToken(t) {
  if (t) sessionStorage.setItem(KEY, t);
  else sessionStorage.removeItem(KEY);
}

// call sends one request; it throws an APIError for a non-2xx answer with
// the server's message. A 401 also signs the user out.
export async function call(path, {method = 'GET', body, tok} = {}) {
  const headers = {Accept: 'application/json', Authorization: 'Bearer ' + (tok ?? token())};
  const init = {method, headers, cache: 'no-store', credentials: 'omit', redirect: 'error'};
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new APIError(0, 'the daemon did not answer: ' + e.message);
  }
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (!res.ok) {
    const msg = (data && data.error) || `${res.status} ${res.statusText}`;
    if (res.status === 401 && tok === undefined) onUnauthorized(msg);
    throw new APIError(res.status, msg);
  }
  return data;
}

export const get = (path) => call(path);
export const post = (path, body) => call(path, {method: 'POST', body});

const e = encodeURIComponent;

// The endpoints the dashboard uses, one place to read them.
export const api = {
  whoami: (tok) => call('/api/v1/whoami', {tok}),
  pipelines: () => get('/api/v1/pipelines'),
  pipeline: (name) => get(`/api/v1/pipelines/${e(name)}`),
  pipelineRuns: (name, limit = 50) => get(`/api/v1/pipelines/${e(name)}/runs?limit=${limit}`),
  versions: (name) => get(`/api/v1/pipelines/${e(name)}/versions`),
  version: (name, hash) => get(`/api/v1/pipelines/${e(name)}/versions/${e(hash)}`),
  trigger: (name) => post(`/api/v1/pipelines/${e(name)}/trigger`),
  backfill: (name, from, to) => post(`/api/v1/pipelines/${e(name)}/backfill`, {from, to}),
  pause: (name) => post(`/api/v1/pipelines/${e(name)}/pause`),
  resume: (name) => post(`/api/v1/pipelines/${e(name)}/resume`),
  run: (id) => get(`/api/v1/runs/${e(id)}`),
  deadLetters: (q) => get(`/api/v1/deadletters?${new URLSearchParams(q)}`),
  replay: (sel) => post('/api/v1/deadletters/replay', sel),
  purge: (sel) => post('/api/v1/deadletters/purge', sel),
};
