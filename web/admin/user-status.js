// user-status.js — a user's status, last sign-in and readiness for an
// outage in words, as the users list and the user dialog show them.

import { fmtTime } from './dom.js';

/** Activated and not suspended is "Activated"; the API's "active" says both. */
export function statusText(u) {
  if (u.active) return 'Activated';
  if (u.suspended) return 'Suspended';
  return u.activated === false ? 'Not activated' : 'Suspended';
}

/** The last sign-in, "Never", or a dash when the server does not say. */
export function lastLogin(u) {
  if (u.last_login === undefined) return '—';
  return fmtTime(u.last_login) || 'Never';
}

// The readiness codes of the user view ("not_ready"), in a few words; the
// Continuity page's readiness panel has the server's sentences and fixes.
const NOT_READY = {
  no_password: 'no password',
  never_logged_in: 'never signed in',
  suspended: 'suspended',
  not_activated: 'not activated',
  ldap_no_cached_password: 'directory password not kept yet',
};

/** "Yes", "No (no password, never signed in)", or a dash when the server does not say. */
export function readyText(u) {
  if (u.ready === undefined) return '—';
  if (u.ready) return 'Yes';
  const codes = Array.isArray(u.not_ready) ? u.not_ready.map((c) => (typeof c === 'string' ? c : c.code)) : [];
  return codes.length ? `No (${codes.map((c) => NOT_READY[c] || c).join(', ')})` : 'No';
}
