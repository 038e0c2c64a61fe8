// api.js: the dashboard's only way to the engine: the REST API (docs/API.md), with the API key
// the person signed in with. The key lives in this tab's session storage (gone when the tab
// closes), is sent only in the Authorization header of requests to this origin, and never
// appears in a URL. No cookie is used, so another site's page cannot act with it (CSRF).

const KEY = 'xero-sync.api-key';

export const session = {
  get key() { return sessionStorage.getItem(KEY); },
  set(key) { sessionStorage.setItem(KEY, key); },
  clear() { sessionStorage.removeItem(KEY); },
};

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field || null;
  }
}

// Money is exact decimal: a number whose text a JavaScript number would change ("100.10",
// "12345678901234567.89") is kept as its own text (JSON.rawJSON, where the browser has it),
// shown as written and sent back unchanged.
const raw = typeof JSON.rawJSON === 'function' ? JSON.rawJSON : null;
function exact(key, value, ctx) {
  if (raw && typeof value === 'number' && ctx && typeof ctx.source === 'string' &&
      String(value) !== ctx.source) {
    return raw(ctx.source);
  }
  return value;
}
export function parse(text) { return JSON.parse(text, exact); }
export function isRaw(v) {
  return v !== null && typeof v === 'object' && typeof JSON.isRawJSON === 'function' &&
         JSON.isRawJSON(v);
}

let signedOut = () => {};
// whenSignedOut sets what happens when the engine refuses the key (401).
export function whenSignedOut(fn) { signedOut = fn; }

// api calls one route and returns its JSON body; a refusal throws an ApiError with the
// engine's code, message and field. opts.key: try this key instead of the stored one.
export async function api(method, path, body, opts = {}) {
  const key = opts.key || session.key;
  if (!key) {
    signedOut('');
    throw new ApiError(401, 'unauthorized', 'Sign in first.');
  }
  const headers = { Authorization: `Bearer ${key}`, Accept: 'application/json' };
  const init = { method, headers, cache: 'no-store', credentials: 'omit', redirect: 'error' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, 'unreachable', `The engine cannot be reached (${e.message}).`);
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = parse(text);
    } catch {
      throw new ApiError(res.status, 'bad_reply', `The engine answered ${res.status} with a body that is not JSON.`);
    }
  }
  if (!res.ok) {
    const e = (data && data.error) || {};
    if (res.status === 401 && !opts.key) {
      signedOut('The engine refused the API key: sign in again.');
    }
    throw new ApiError(res.status, e.code || `http_${res.status}`, e.message || res.statusText, e.field);
  }
  return data;
}

// q builds a query string from the defined values of params.
export function q(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') u.set(k, v);
  }
  const s = u.toString();
  return s ? `?${s}` : '';
}

// The entities the engine syncs (docs/MAPPING.md), in the order the page lists them.
export const ENTITIES = ['contact', 'invoice', 'payment', 'account', 'bank_transaction', 'job', 'document'];

// tenantName is how the page names a connection: its Xero organisation's name.
export function tenantName(c) {
  return c.tenant_name || c.tenant_id;
}

// tenantNames maps every connection's id to its tenant's name.
export async function tenantNames() {
  const r = await api('GET', `/v1/connections${q({ limit: 1000 })}`);
  return new Map(r.connections.map((c) => [c.id, tenantName(c)]));
}
