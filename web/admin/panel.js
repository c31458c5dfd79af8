// panel.js — the control panel's entry point (/admin/): sign-in and session
// (the webmail's login API and session: the cookie, and this tab's CSRF
// token in sessionStorage, so the webmail's "Control panel" link needs no
// second sign-in), the role check (a user is told "not allowed"; the API
// answers them 403 anyway), the operator's customer selector, and the router:
// one page a hash route (#/dashboard, #/users ...), each page a module with
// build() (once), show() (each visit) and hide(). The navigation collapses
// behind a "Menu" button on a phone-sized screen; moving to a page puts the
// focus on its heading so a screen reader says where it is.

import { api, ApiError, forgetSession, login, logout } from '/js/api.js';
import { h } from './dom.js';
import { ctx, forgetDomains, isOperator } from './ctx.js';
import dashboard from './dashboard.js';
import continuity from './continuity.js';
import users from './users.js';
import domains from './domains.js';
import customers from './customers.js';
import ldap from './ldap.js';
import restrictions from './restrictions.js';
import queue from './queue.js';
import audit from './audit.js';
import holds from './holds.js';
import search from './search.js';

const $ = (id) => document.getElementById(id);

// In the navigation's order; the first is the landing page.
const PAGES = [dashboard, continuity, users, domains, customers, ldap, restrictions, queue, audit, holds, search];
const OLD_ANCHORS = { '#audit': 'audit', '#holds': 'holds', '#search': 'archive' };
const MOBILE = window.matchMedia('(max-width: 760px)');

const router = {
  current: null,
  built: new Set(),
};

function setText(id, text) {
  const el = $(id);
  el.textContent = text || '';
  el.hidden = !text;
}

const allowed = (p) => !p.operatorOnly || isOperator();

// ------------------------------------------------------------------ sign-in, session

function stopPages() {
  if (router.current) router.current.hide?.();
  router.current = null;
  // A dialog left open would stay modal over the sign-in form.
  for (const d of document.querySelectorAll('dialog[open]')) d.close();
}

function showLogin(message) {
  stopPages();
  ctx.me = null;
  $('panel').hidden = true;
  $('panel-login').hidden = false;
  setText('panel-login-error', message);
  $('panel-password').value = '';
  $(message ? 'panel-password' : 'panel-email').focus();
}

function showDenied() {
  stopPages();
  $('panel-main').hidden = true;
  $('panel-nav').hidden = true;
  $('nav-toggle').hidden = true;
  $('customer-picker').hidden = true;
  $('panel-denied').hidden = false;
}

ctx.onSessionEnd = () => {
  forgetSession();
  showLogin('Your session has ended. Please sign in again.');
};
ctx.onDenied = showDenied;
ctx.onCustomersChanged = () => loadCustomers().catch(() => {});

function buildNav() {
  const items = PAGES.filter(allowed).map((p) => h('li', {},
    h('a', { href: `#/${p.id}`, dataset: { page: p.id } }, p.title)));
  $('panel-nav-list').replaceChildren(...items);
}

async function loadCustomers() {
  const select = $('customer-select');
  const r = await api('GET', '/api/v1/admin/customers');
  const names = (Array.isArray(r) ? r : r.customers || []).map((c) => c.name);
  select.replaceChildren(h('option', { value: '' }, 'All customers'),
    ...names.map((n) => h('option', { value: n }, n)));
  if (!names.includes(ctx.customer)) ctx.customer = '';
  select.value = ctx.customer;
}

async function showPanel(me) {
  ctx.me = me;
  $('panel-login').hidden = true;
  $('panel').hidden = false;
  $('panel-me').textContent = `${me.email} (${me.role})`;
  document.body.classList.toggle('operator', me.role === 'operator');
  if (me.role !== 'admin' && me.role !== 'operator') {
    showDenied();
    return;
  }
  $('panel-denied').hidden = true;
  $('panel-nav').hidden = false;
  $('nav-toggle').hidden = false;
  $('panel-main').hidden = false;
  $('customer-picker').hidden = !isOperator();
  // Another account may have signed in in this tab: nothing of the last one stays.
  forgetDomains();
  ctx.domain = '';
  for (const p of router.built) p.reset?.();
  buildNav();
  if (isOperator()) loadCustomers().catch(() => {}); // the pages say what failed
  // The focus goes to the page's heading (the sign-in form it was on is gone).
  await route(true);
}

function loginErrorText(e) {
  if (!(e instanceof ApiError)) return 'Something went wrong. Please try again.';
  if (e.status === 400 || e.status === 401) return 'Wrong email address or password.';
  if (e.status === 403) return `You cannot sign in: ${e.message}.`;
  if (e.status === 429) return 'Too many failed sign-ins. Please wait a few minutes and try again.';
  return e.status === 0 ? e.message : `Sign-in failed (${e.message}).`;
}

async function onLogin(ev) {
  ev.preventDefault();
  const email = $('panel-email').value.trim();
  const password = $('panel-password').value;
  if (!email || !password) {
    setText('panel-login-error', 'Enter your email address and password.');
    return;
  }
  const button = $('panel-login-submit');
  button.disabled = true;
  try {
    await login(email, password);
    const me = await api('GET', '/api/v1/me');
    $('panel-password').value = '';
    await showPanel(me);
  } catch (e) {
    showLogin(loginErrorText(e));
  } finally {
    button.disabled = false;
  }
}

// ------------------------------------------------------------------ navigation

function pageFromHash() {
  const hash = location.hash;
  if (OLD_ANCHORS[hash]) return PAGES.find((p) => p.id === OLD_ANCHORS[hash]);
  const m = hash.match(/^#\/([a-z-]+)/);
  const p = m && PAGES.find((x) => x.id === m[1]);
  return p && allowed(p) ? p : PAGES[0];
}

function setNavOpen(open) {
  $('panel-nav').classList.toggle('open', open);
  $('nav-toggle').setAttribute('aria-expanded', String(open));
}

/** Shows the page the hash names; focus moves to its heading when the user navigated. */
async function route(moveFocus = true) {
  if (!ctx.me || $('panel-main').hidden) return;
  const page = pageFromHash();
  if (router.current && router.current !== page) router.current.hide?.();
  if (!router.built.has(page)) {
    const el = page.build();
    if (!el.isConnected) $('panel-main').append(el);
    page.el = el;
    router.built.add(page);
  }
  for (const p of router.built) p.el.hidden = p !== page;
  for (const a of $('panel-nav-list').querySelectorAll('a')) {
    if (a.dataset.page === page.id) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  document.title = `${page.title} — lifeboat control panel`;
  router.current = page;
  setNavOpen(false);
  if (moveFocus) page.el.querySelector('h1')?.focus();
  await page.show();
}

// ------------------------------------------------------------------ wiring

function wire() {
  $('panel-login-form').addEventListener('submit', onLogin);
  $('panel-logout').addEventListener('click', async () => {
    try {
      await logout();
    } catch {
      // The session may be gone already; the sign-in form is right either way.
    }
    showLogin('');
  });
  $('nav-toggle').addEventListener('click', () => {
    const open = !$('panel-nav').classList.contains('open');
    setNavOpen(open);
    if (open) $('panel-nav-list').querySelector('a')?.focus();
  });
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && MOBILE.matches && $('panel-nav').classList.contains('open')) {
      setNavOpen(false);
      $('nav-toggle').focus();
    }
  });
  window.addEventListener('hashchange', () => route(true));
  // The link of the page shown changes no hash: fold the navigation all the same.
  $('panel-nav-list').addEventListener('click', (ev) => {
    const a = ev.target.closest('a');
    if (a && a.getAttribute('href') === location.hash) {
      setNavOpen(false);
      router.current?.el.querySelector('h1')?.focus();
    }
  });
  $('customer-select').addEventListener('change', () => {
    ctx.customer = $('customer-select').value;
    forgetDomains();
    for (const p of router.built) p.reset?.();
    route(false);
  });
}

async function boot() {
  wire();
  // The webmail's session in this tab (its CSRF token) carries over.
  if (sessionStorage.getItem('lifeboat.csrf')) {
    try {
      await showPanel(await api('GET', '/api/v1/me'));
      return;
    } catch {
      forgetSession();
    }
  }
  showLogin('');
}

boot();
