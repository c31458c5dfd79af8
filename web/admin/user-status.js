// user-status.js — a user's status and last sign-in in words, as the users
// list and the user dialog both show them.

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
