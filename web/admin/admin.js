// admin.js — the control panel (issue 5, items 4 to 6) for admins (their
// customer) and operators (every customer): the audit trail
// (GET /api/v1/admin/audit), legal holds (GET/POST/DELETE
// /api/v1/admin/archive/holds) and the archive search with one entry's view
// and the search's mbox export (GET /api/v1/archive/export, a plain link: the
// browser downloads it as the server streams it). It signs in with the
// webmail's login API and shares its session (the cookie, and this tab's
// CSRF token in sessionStorage), so the webmail's "Control panel" link needs
// no second sign-in. A user is told "not allowed"; the API answers them 403
// anyway, which is shown the same way.

import { api, ApiError, forgetSession, login, logout } from '/js/api.js';
import { humanSize } from '/js/mailtext.js';
import {
  archiveParams, fmtDate, rawBodyText, renderAttachments, renderBody, renderImagesNote,
} from '/js/msgview.js';

const $ = (id) => document.getElementById(id);
const AUDIT_LIMIT = 200;
const PAGE = 50;

const state = {
  me: null,
  params: new URLSearchParams(),
  offset: 0,
  current: null, // the open archive entry
};

function setText(id, text) {
  const el = $(id);
  el.textContent = text || '';
  el.hidden = !text;
}

function cell(text, className) {
  const td = document.createElement('td');
  td.textContent = text ?? '';
  if (className) td.className = className;
  return td;
}

const isOperator = () => state.me?.role === 'operator';

// ------------------------------------------------------------------ sign-in, session

function showLogin(message) {
  state.me = null;
  $('panel').hidden = true;
  $('panel-login').hidden = false;
  setText('panel-login-error', message);
  $('panel-password').value = '';
  $(message ? 'panel-password' : 'panel-email').focus();
}

function showDenied() {
  $('panel-main').hidden = true;
  $('panel-nav').hidden = true;
  $('panel-denied').hidden = false;
}

// A 401 ends the session, a 403 means the panel is not for this account;
// anything else is said in the section's alert region (where).
function fail(e, where) {
  if (e instanceof ApiError && e.status === 401) {
    forgetSession();
    showLogin('Your session has ended. Please sign in again.');
  } else if (e instanceof ApiError && e.code === 'admin_only') {
    showDenied();
  } else {
    setText(where, e instanceof Error ? e.message : String(e));
  }
}

async function showPanel(me) {
  state.me = me;
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
  $('panel-main').hidden = false;
  if (me.customer) $('hold-customer').value = me.customer;
  await Promise.all([
    loadAudit().catch((e) => fail(e, 'audit-error')),
    loadHolds().catch((e) => fail(e, 'holds-error')),
    search().catch((e) => fail(e, 'search-error')),
  ]);
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

// ------------------------------------------------------------------ audit

// An admin's customer, for the "whole customer" hold, when /api/v1/me does
// not say it: every row they see is of their customer.
function learnCustomer(name) {
  if (!isOperator() && name && !$('hold-customer').value) $('hold-customer').value = name;
}

async function loadAudit() {
  setText('audit-error', '');
  const r = await api('GET', `/api/v1/admin/audit?limit=${AUDIT_LIMIT}`);
  const rows = r.entries.map((a) => {
    learnCustomer(a.customer);
    const tr = document.createElement('tr');
    const when = document.createElement('td');
    const time = document.createElement('time');
    time.dateTime = a.at;
    time.textContent = fmtDate(a.at);
    when.append(time);
    tr.append(when, cell(a.customer, 'op-only'), cell(a.actor), cell(a.action), cell(a.target, 'wrap'),
      cell(a.detail, 'wrap'));
    return tr;
  });
  $('audit-rows').replaceChildren(...rows);
  const n = r.entries.length;
  $('audit-info').textContent = n === 0 ? 'Nothing recorded yet.'
    : `${n} entr${n === 1 ? 'y' : 'ies'}${n === AUDIT_LIMIT ? ' (the newest)' : ''}`;
}

// ------------------------------------------------------------------ legal holds

const holdName = (h) => (h.user ? h.user : `the whole customer ${h.customer}`);

async function loadHolds() {
  setText('holds-error', '');
  const r = await api('GET', '/api/v1/admin/archive/holds');
  const rows = r.holds.map((h) => {
    learnCustomer(h.customer);
    const tr = document.createElement('tr');
    const act = document.createElement('td');
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'danger';
    b.textContent = 'Release';
    b.setAttribute('aria-label', `Release the hold on ${holdName(h)}`);
    b.addEventListener('click', () => releaseHold(h));
    act.append(b);
    tr.append(cell(h.user || 'whole customer'), cell(h.customer), cell(fmtDate(h.created)), cell(h.created_by), act);
    return tr;
  });
  $('holds-rows').replaceChildren(...rows);
  $('holds-table').hidden = rows.length === 0;
  $('holds-info').textContent = rows.length === 0 ? 'No legal hold is in place.' : '';
}

async function placeHold(body, input) {
  setText('holds-error', '');
  $('hold-status').textContent = '';
  try {
    const h = await api('POST', '/api/v1/admin/archive/holds', body);
    input.value = body.customer && !isOperator() ? input.value : '';
    $('hold-status').textContent = `Hold placed on ${holdName(h)}.`;
    await Promise.all([loadHolds(), loadAudit()]);
  } catch (e) {
    fail(e, 'holds-error');
  }
}

async function releaseHold(h) {
  if (!window.confirm(`Release the legal hold on ${holdName(h)}? ` +
    'Archived mail older than the retention window can then be purged.')) return;
  setText('holds-error', '');
  $('hold-status').textContent = '';
  try {
    await api('DELETE', `/api/v1/admin/archive/holds/${h.id}`);
    $('hold-status').textContent = `Hold on ${holdName(h)} released.`;
    await Promise.all([loadHolds(), loadAudit()]);
    $('hold-user').focus();
  } catch (e) {
    fail(e, 'holds-error');
  }
}

// ------------------------------------------------------------------ archive search

function searchRow(m) {
  const tr = document.createElement('tr');
  const date = document.createElement('td');
  const time = document.createElement('time');
  time.dateTime = m.date;
  time.textContent = fmtDate(m.date);
  date.append(time);
  const subj = document.createElement('td');
  const open = document.createElement('button');
  open.type = 'button';
  open.className = 'linkish';
  open.dataset.id = String(m.id);
  open.textContent = m.subject || '(no subject)';
  open.addEventListener('click', () => openEntry(m.id));
  subj.append(open);
  if (m.has_attachment) {
    const clip = document.createElement('span');
    clip.textContent = ' 📎';
    clip.setAttribute('role', 'img');
    clip.setAttribute('aria-label', 'with attachment');
    subj.append(clip);
  }
  tr.append(date, cell(m.direction), cell(m.from, 'wrap'), cell((m.to || []).join(', '), 'wrap'), subj,
    cell(humanSize(m.size), 'nowrap'));
  return tr;
}

async function loadResults() {
  const params = new URLSearchParams(state.params);
  params.set('offset', String(state.offset));
  params.set('limit', String(PAGE));
  const r = await api('GET', `/api/v1/archive?${params}`);
  $('search-rows').replaceChildren(...r.messages.map(searchRow));
  $('search-table').hidden = r.messages.length === 0;
  const first = r.total === 0 ? 0 : state.offset + 1;
  const last = state.offset + r.messages.length;
  $('search-info').textContent = r.total === 0 ? 'No archived message matches.'
    : `${first}–${last} of ${r.total}${r.total_exact === false ? '+' : ''}`;
  $('search-prev').disabled = state.offset === 0;
  $('search-next').disabled = last >= r.total;
}

async function search() {
  const { params, error } = archiveParams({
    q: $('search-q').value.trim(),
    from: $('search-from').value.trim(),
    to: $('search-to').value.trim(),
    after: $('search-after').value,
    before: $('search-before').value,
    attachment: $('search-attachment').checked,
  });
  setText('search-error', error);
  if (error) return;
  state.params = params;
  state.offset = 0;
  // The export takes the same filters (paging does not apply to it).
  const link = $('export-link');
  const q = params.toString();
  link.href = `/api/v1/archive/export${q ? `?${q}` : ''}`;
  link.setAttribute('download', '');
  await loadResults();
}

function closeEntry() {
  state.current = null;
  $('entry').hidden = true;
  $('entry-body').replaceChildren();
  setText('entry-error', '');
}

async function openEntry(id) {
  setText('search-error', '');
  try {
    const msg = await api('GET', `/api/v1/archive/${id}`);
    const base = `/api/v1/archive/${id}`;
    let fallback = null;
    if (typeof msg.text !== 'string' && typeof msg.html !== 'string') {
      fallback = await rawBodyText(`${base}/raw`);
    }
    state.current = msg;
    const h = msg.headers || {};
    $('entry-subject').textContent = msg.subject || '(no subject)';
    $('entry-from').textContent = h.from || msg.from || '';
    $('entry-to').textContent = h.to || '';
    const env = msg.participants || {};
    $('entry-envelope').textContent =
      `${msg.direction}: from ${(env.from || []).join(', ') || '<>'} to ${(env.to || []).join(', ')}`;
    $('entry-date').textContent = fmtDate(msg.date);
    $('entry-raw').href = `${base}/raw`;
    $('entry-raw').setAttribute('download', `archive-${id}.eml`);
    renderAttachments($('entry-attachments'), $('entry-attachment-list'), msg, base);
    renderImagesNote($('entry-images'), $('entry-images-text'), msg, false);
    renderBody($('entry-body'), msg, fallback);
    setText('entry-error', '');
    $('entry').hidden = false;
    $('entry').focus();
    // The view was recorded: the audit shows it.
    loadAudit().catch((e) => fail(e, 'audit-error'));
  } catch (e) {
    fail(e, 'search-error');
  }
}

async function loadImages() {
  const msg = state.current;
  if (!msg) return;
  try {
    const withImages = await api('GET', `/api/v1/archive/${msg.id}?images=1`);
    if (state.current?.id !== msg.id) return;
    state.current = { ...msg, html: withImages.html };
    renderBody($('entry-body'), state.current);
    renderImagesNote($('entry-images'), $('entry-images-text'), state.current, true);
  } catch (e) {
    fail(e, 'entry-error');
  }
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
  $('audit-refresh').addEventListener('click', () => loadAudit().catch((e) => fail(e, 'audit-error')));
  $('hold-user-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const v = $('hold-user').value.trim();
    if (!v) setText('holds-error', 'Enter the address of the user whose mail is to be held.');
    else placeHold({ user: v }, $('hold-user'));
  });
  $('hold-customer-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const v = $('hold-customer').value.trim();
    if (!v) setText('holds-error', 'Enter the name of the customer whose mail is to be held.');
    else placeHold({ customer: v }, $('hold-customer'));
  });
  $('search-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    closeEntry();
    search().catch((e) => fail(e, 'search-error'));
  });
  $('search-clear').addEventListener('click', () => {
    $('search-form').reset();
    closeEntry();
    search().catch((e) => fail(e, 'search-error'));
  });
  $('search-prev').addEventListener('click', () => {
    state.offset = Math.max(0, state.offset - PAGE);
    loadResults().catch((e) => fail(e, 'search-error'));
  });
  $('search-next').addEventListener('click', () => {
    state.offset += PAGE;
    loadResults().catch((e) => fail(e, 'search-error'));
  });
  $('entry-close').addEventListener('click', () => {
    const id = state.current?.id;
    closeEntry();
    $('search-rows').querySelector(`button[data-id="${id}"]`)?.focus();
  });
  $('entry-images-load').addEventListener('click', loadImages);
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && !$('entry').hidden) $('entry-close').click();
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
