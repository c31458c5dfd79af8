// ctx.js — what the control panel's pages share: who is signed in, the
// customer an operator narrowed the panel to (sent as ?customer=NAME on every
// admin call), the domain chosen on the per-domain pages (kept when going
// from page to page, as "Select Domain" is in the products admins know), the
// domain list, the status line, and the one place that decides what an API
// error means for the whole panel (on its code, never on its text).

import { api, ApiError } from '/js/api.js';
import { h, listOf, uid } from './dom.js';

export const ctx = {
  me: null,
  customer: '', // operator's choice; '' = all customers
  domain: '', // the domain chosen on the per-domain pages
  domains: null, // cached GET domains (null: load again)
  onSessionEnd: () => {},
  onDenied: () => {},
  onCustomersChanged: () => {},
};

export const isOperator = () => ctx.me?.role === 'operator';

export const enc = encodeURIComponent;

/** The admin API path for rel ('users', 'domains/x/ldap', ...) with query
 * params (empty ones dropped) and the operator's customer. */
export function adminPath(rel, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  // An explicit customer param (even '') replaces the operator's choice.
  if (isOperator() && ctx.customer && !('customer' in params)) q.set('customer', ctx.customer);
  const s = q.toString();
  return `/api/v1/admin/${rel}${s ? `?${s}` : ''}`;
}

/** api() on an admin path. */
export function adminApi(method, rel, body, params) {
  return api(method, adminPath(rel, params), body);
}

/** What an error means: the session ended (401: back to the sign-in), the
 * panel is not for this account (admin_only), or a message for box. */
export function fail(e, box) {
  if (e instanceof ApiError && e.status === 401) {
    ctx.onSessionEnd();
  } else if (e instanceof ApiError && e.code === 'admin_only') {
    ctx.onDenied();
  } else if (box) {
    box.show(errorText(e));
  } else {
    say(errorText(e));
  }
}

/** The text for an error: the server's own sentence (it names the failing
 * rule, the missing object ...), or what went wrong on the way. */
export function errorText(e) {
  if (e instanceof ApiError) {
    if (e.status === 0) return e.message;
    if (e.status === 429) return 'Too many requests: please wait a moment and try again.';
    if (e.code === 'not_found' && !e.message) return 'Not found (it may have been deleted meanwhile).';
    return e.message || `The server answered ${e.status}.`;
  }
  return e instanceof Error ? e.message : String(e);
}

const SAY_MS = 8000;
let sayTimer = null;

/** Says text in the panel's polite status line (a live region, shown for a few seconds). */
export function say(text) {
  const el = document.getElementById('panel-status');
  // Emptied first: the same sentence twice in a row is still announced.
  el.textContent = '';
  clearTimeout(sayTimer);
  sayTimer = setTimeout(() => {
    el.textContent = text;
    sayTimer = setTimeout(() => { el.textContent = ''; }, SAY_MS);
  }, 30);
}

/** The domains in scope (cached until invalidated or the customer changes). */
export async function domains() {
  if (!ctx.domains) ctx.domains = listOf(await adminApi('GET', 'domains'), 'domains');
  return ctx.domains;
}

export function forgetDomains() {
  ctx.domains = null;
}

export const domainName = (d) => (typeof d === 'string' ? d : d.name || d.domain);

/** The "Domain" chooser of the per-domain pages: a labelled <select> kept in
 * step with ctx.domain; onChange(name) after a choice. .refresh() fills it
 * (resolves to the chosen name, '' when there is no domain, or when allText
 * is given — an "all domains" first choice — and it is chosen). */
export function domainPicker(onChange, allText) {
  const id = uid('domain');
  const select = h('select', {
    id,
    onchange: () => {
      ctx.domain = select.value;
      onChange(select.value);
    },
  });
  const wrap = h('div', { class: 'picker' }, h('label', { for: id }, 'Domain'), select);
  wrap.select = select;
  wrap.refresh = async () => {
    const names = (await domains()).map(domainName);
    select.replaceChildren(...(allText ? [h('option', { value: '' }, allText)] : []),
      ...names.map((n) => h('option', { value: n }, n)));
    let chosen = ctx.domain;
    if (!names.includes(chosen) && !(allText && chosen === '')) chosen = allText ? '' : names[0] || '';
    if (!allText) ctx.domain = chosen;
    select.value = chosen;
    select.disabled = names.length === 0;
    return chosen;
  };
  return wrap;
}
