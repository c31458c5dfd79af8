// app.js — the webmail's entry point: decides between the sign-in page (and
// its "Forgot password?" and "Choose a new password" forms, which the URL's
// #forgot and #reset=TOKEN open) and the mailbox, runs the login form (its
// errors, the lockout's 429) and sign-out. The mailbox itself is mailbox.js,
// the password pages password.js.

import { api, ApiError, forgetSession, login, logout } from './api.js';
import { startMailbox, stopMailbox } from './mailbox.js';
import { openPasswordDialog, showForgot, showReset, showSignInForm, wirePasswordPages } from './password.js';

const $ = (id) => document.getElementById(id);

// The sign-in form, with an error (message) or good news (notice) above it.
function showLogin(message, notice) {
  stopMailbox();
  showSignInForm();
  const err = $('login-error');
  err.textContent = message || '';
  err.hidden = !message;
  const note = $('login-notice');
  note.textContent = notice || '';
  note.hidden = !notice;
  $('login-password').value = '';
  $(message ? 'login-password' : 'login-email').focus();
}

// #reset=TOKEN (the link of a reset mail) or #forgot. The token is taken out
// of the address bar and the history at once. True when a form was shown.
function routeHash() {
  const h = location.hash;
  if (h.startsWith('#reset=')) {
    let token = h.slice('#reset='.length);
    try {
      token = decodeURIComponent(token);
    } catch {
      // not percent-encoded after all: use it as it is
    }
    history.replaceState(null, '', location.pathname + location.search);
    stopMailbox();
    showReset(token);
    return true;
  }
  if (h === '#forgot' && $('mail-view').hidden) {
    showForgot();
    return true;
  }
  return false;
}

function onHashChange() {
  if (!routeHash() && $('mail-view').hidden) showLogin('');
}

let currentUser = null; // GET /api/v1/me while signed in

async function showMailbox(me) {
  currentUser = me;
  $('login-view').hidden = true;
  $('mail-view').hidden = false;
  $('me').textContent = me.name ? `${me.name} <${me.email}>` : me.email;
  await startMailbox(me, () => showLogin('Your session has ended. Please sign in again.'));
}

function loginErrorText(e) {
  if (!(e instanceof ApiError)) return 'Something went wrong. Please try again.';
  switch (e.status) {
    case 400:
    case 401:
      return 'Wrong email address or password.';
    case 403:
      return `You cannot sign in: ${e.message}.`;
    case 429: {
      const minutes = Math.max(1, Math.ceil((e.retryAfter || 60) / 60));
      return `Too many failed sign-ins. Please wait ${minutes} minute${minutes === 1 ? '' : 's'} and try again.`;
    }
    case 0:
      return e.message;
    default:
      return `Sign-in failed (${e.message}).`;
  }
}

async function onLogin(ev) {
  ev.preventDefault();
  const email = $('login-email').value.trim();
  const password = $('login-password').value;
  const err = $('login-error');
  $('login-notice').hidden = true;
  if (!email || !password) {
    err.textContent = 'Enter your email address and password.';
    err.hidden = false;
    return;
  }
  const button = $('login-submit');
  button.disabled = true;
  err.hidden = true;
  try {
    await login(email, password);
    const me = await api('GET', '/api/v1/me');
    $('login-password').value = '';
    await showMailbox(me);
  } catch (e) {
    showLogin(loginErrorText(e));
  } finally {
    button.disabled = false;
  }
}

async function onLogout() {
  try {
    await logout();
  } catch {
    // The session may be gone already; the login page is right either way.
  }
  showLogin('');
}

async function boot() {
  $('login-form').addEventListener('submit', onLogin);
  $('logout').addEventListener('click', onLogout);
  const sessionEnded = () => showLogin('Your session has ended. Please sign in again.');
  $('password-open').addEventListener('click', () => openPasswordDialog(currentUser?.email, sessionEnded));
  wirePasswordPages(() => showLogin('', 'Your password has been changed. Sign in with the new password.'));
  window.addEventListener('hashchange', onHashChange);
  if (routeHash()) return;
  // A reload keeps the session (cookie) and this tab's CSRF token; without
  // the token no change could be made, so a fresh login is asked for.
  if (sessionStorage.getItem('lifeboat.csrf')) {
    try {
      await showMailbox(await api('GET', '/api/v1/me'));
      return;
    } catch {
      forgetSession();
    }
  }
  showLogin('');
}

boot();
