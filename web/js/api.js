// api.js — the webmail's only way to the server: JSON over fetch to
// /api/v1 (SPEC.md "HTTP API"). The session cookie is HttpOnly and travels by
// itself; the CSRF token from the login answer is kept in sessionStorage (this
// tab only, gone when it closes) and sent as X-CSRF-Token on every change.

const CSRF_KEY = 'lifeboat.csrf';

export class ApiError extends Error {
  // code: the server's stable machine-readable code ("csrf", "admin_only", ...), '' if none.
  constructor(status, message, retryAfter, code) {
    super(message);
    this.status = status;
    this.retryAfter = retryAfter;
    this.code = code || '';
  }
}

function csrfToken() {
  return sessionStorage.getItem(CSRF_KEY);
}

export async function api(method, path, body) {
  return request(method, path, body === undefined ? undefined : JSON.stringify(body), 'application/json');
}

/** A request whose body is text of another type (the control panel's CSV
 * import: text/csv); the answer and the errors as api()'s. */
export async function apiText(method, path, text, contentType) {
  return request(method, path, text, contentType);
}

async function request(method, path, body, contentType) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = contentType;
  const token = csrfToken();
  if (method !== 'GET' && method !== 'HEAD' && token) headers['X-CSRF-Token'] = token;
  let resp;
  try {
    resp = await fetch(path, {
      method,
      headers,
      body,
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, 'The server cannot be reached.');
  }
  const type = resp.headers.get('Content-Type') || '';
  const data = type.startsWith('application/json') ? await resp.json().catch(() => null) : await resp.text();
  if (!resp.ok) {
    const message = data && typeof data === 'object' && data.error ? data.error : `HTTP ${resp.status}`;
    const code = data && typeof data === 'object' && typeof data.code === 'string' ? data.code : '';
    // Signing in again in another tab of this browser replaces the session
    // cookie, and this tab's CSRF token belongs to the old session: for this
    // tab the session has ended, as with a 401.
    if (code === 'csrf') throw new ApiError(401, message, 0, code);
    throw new ApiError(resp.status, message, Number(resp.headers.get('Retry-After')) || 0, code);
  }
  return data;
}

export async function login(email, password) {
  const r = await api('POST', '/api/v1/login', { email, password });
  sessionStorage.setItem(CSRF_KEY, r.csrf);
  return r;
}

export async function logout() {
  try {
    await api('POST', '/api/v1/logout');
  } finally {
    sessionStorage.removeItem(CSRF_KEY);
  }
}

export function forgetSession() {
  sessionStorage.removeItem(CSRF_KEY);
}
