// password.js — the password pages (SPEC.md "HTTP API"): the "Change
// password" dialog of a signed-in user (POST /api/v1/password {"old","new"};
// the server enforces the customer's policy and says why on 400), the
// "Forgot password?" form on the sign-in page (POST
// /api/v1/password-reset/request, whose answer never tells whether the
// address exists) and the "Choose a new password" form that a reset link
// opens (#reset=TOKEN; POST /api/v1/password-reset/confirm {"token","new"}).

import { api, ApiError } from './api.js';
import { toast } from './ui.js';

const $ = (id) => document.getElementById(id);

const FORGOT_DONE = 'If the address is known, a reset link was sent to its alternate address.';

function setText(id, text) {
  const el = $(id);
  el.textContent = text || '';
  el.hidden = !text;
}

function tooMany(e) {
  const minutes = Math.max(1, Math.ceil((e.retryAfter || 60) / 60));
  return `Too many attempts. Please wait ${minutes} minute${minutes === 1 ? '' : 's'} and try again.`;
}

function failure(e, what) {
  if (!(e instanceof ApiError)) return `${what} failed. Please try again.`;
  if (e.status === 0) return e.message;
  if (e.status === 429) return tooMany(e);
  if (e.status === 404) return `${what} is not available on this server.`;
  return `${what} failed (${e.message}).`;
}

// The two new-password fields: the password, or null with the error shown.
function newPassword(newId, repeatId, errId) {
  const pw = $(newId).value;
  if (!pw) {
    setText(errId, 'Enter the new password.');
    $(newId).focus();
    return null;
  }
  if (pw !== $(repeatId).value) {
    setText(errId, 'The two new passwords are not the same.');
    $(repeatId).focus();
    return null;
  }
  return pw;
}

// ------------------------------------------------------------------ change password (signed in)

let onSessionEnd = null;

/** Opens the dialog for the signed-in user's address email. */
export function openPasswordDialog(email, sessionEnd) {
  onSessionEnd = sessionEnd;
  const dlg = $('password-dialog');
  $('password-form').reset();
  $('password-username').value = email || '';
  setText('password-error', '');
  if (!dlg.open) dlg.showModal();
  $('password-old').focus();
}

async function onChangePassword(ev) {
  ev.preventDefault();
  setText('password-error', '');
  const old = $('password-old').value;
  if (!old) {
    setText('password-error', 'Enter your current password.');
    $('password-old').focus();
    return;
  }
  const pw = newPassword('password-new', 'password-repeat', 'password-error');
  if (pw === null) return;
  const button = $('password-submit');
  button.disabled = true;
  try {
    await api('POST', '/api/v1/password', { old, new: pw });
    $('password-dialog').close();
    $('password-form').reset();
    toast('Password changed');
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      $('password-dialog').close();
      onSessionEnd?.();
      return;
    }
    if (e instanceof ApiError && e.status === 403) {
      setText('password-error', 'The current password is wrong.');
      $('password-old').select();
      $('password-old').focus();
    } else if (e instanceof ApiError && e.status === 400) {
      setText('password-error', e.message); // the policy's reason, in the server's words
      $('password-new').focus();
    } else {
      setText('password-error', failure(e, 'Changing the password'));
    }
  } finally {
    button.disabled = false;
  }
}

// ------------------------------------------------------------------ forgot / reset (signed out)

const LOGIN_FORMS = ['login-form', 'forgot-form', 'reset-form'];
let resetToken = null;

function showForm(id) {
  for (const f of LOGIN_FORMS) $(f).hidden = f !== id;
  $('mail-view').hidden = true;
  $('login-view').hidden = false;
}

export function showForgot() {
  showForm('forgot-form');
  setText('forgot-error', '');
  setText('forgot-done', '');
  $('forgot-email').value = $('login-email').value;
  $('forgot-email').focus();
}

export function showReset(token) {
  resetToken = token;
  showForm('reset-form');
  $('reset-form').reset();
  setText('reset-error', '');
  $('reset-new').focus();
}

/** Shows the sign-in form again (the others hidden). */
export function showSignInForm() {
  resetToken = null;
  showForm('login-form');
}

async function onForgot(ev) {
  ev.preventDefault();
  setText('forgot-error', '');
  setText('forgot-done', '');
  const email = $('forgot-email').value.trim();
  if (!email) {
    setText('forgot-error', 'Enter your email address.');
    $('forgot-email').focus();
    return;
  }
  const button = $('forgot-submit');
  button.disabled = true;
  try {
    await api('POST', '/api/v1/password-reset/request', { email });
    setText('forgot-done', FORGOT_DONE);
  } catch (e) {
    setText('forgot-error', failure(e, 'The reset request'));
  } finally {
    button.disabled = false;
  }
}

let afterReset = null;

async function onReset(ev) {
  ev.preventDefault();
  setText('reset-error', '');
  const pw = newPassword('reset-new', 'reset-repeat', 'reset-error');
  if (pw === null) return;
  const button = $('reset-submit');
  button.disabled = true;
  try {
    await api('POST', '/api/v1/password-reset/confirm', { token: resetToken, new: pw });
    $('reset-form').reset();
    afterReset?.();
  } catch (e) {
    if (e instanceof ApiError && (e.status === 400 || e.status === 403 || e.status === 410)) {
      setText('reset-error', e.message); // a weak password, or a link used or expired
    } else {
      setText('reset-error', failure(e, 'Setting the new password'));
    }
  } finally {
    button.disabled = false;
  }
}

/** Wires the forms once; done() runs after a successful reset (back to sign-in). */
export function wirePasswordPages(done) {
  afterReset = done;
  $('password-form').addEventListener('submit', onChangePassword);
  $('password-cancel').addEventListener('click', () => $('password-dialog').close());
  $('forgot-form').addEventListener('submit', onForgot);
  $('reset-form').addEventListener('submit', onReset);
}
