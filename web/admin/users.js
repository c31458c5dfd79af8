// users.js — the Users page (#/users, #/users?q=TEXT): the users of a domain
// or of all the customer's domains, searched and paged by the server (GET
// users?domain=&q=&offset=&limit=), "Add user" and each user's settings in
// the user dialog (user-dialog.js), and the CSV import (users-import.js).

import {
  alertBox, h, listOf, table, uid,
} from './dom.js';
import { adminApi, domainPicker, fail } from './ctx.js';
import { openUser } from './user-dialog.js';
import { lastLogin, statusText } from './user-status.js';
import { importCard } from './users-import.js';

const PAGE = 25;
const ui = {};
const state = { domain: '', q: '', offset: 0, policy: null };

function row(u) {
  const open = h('button', {
    type: 'button',
    class: 'linkish',
    dataset: { email: u.email },
    onclick: (ev) => edit(u.email, ev.currentTarget),
  }, u.email);
  const aliases = Array.isArray(u.aliases) ? u.aliases.length : 0;
  return h('tr', {},
    h('td', { class: 'wrap' }, open),
    h('td', { class: 'wrap' }, u.name || ''),
    h('td', {}, u.role === 'admin' ? 'Administrator' : u.role === 'operator' ? 'Operator' : 'User'),
    h('td', {}, h('span', { class: `badge ${u.active ? 'ok' : 'off'}` }, statusText(u))),
    h('td', {}, u.source === 'ldap' ? 'LDAP' : 'Local'),
    h('td', { class: 'num' }, String(aliases)),
    h('td', { class: 'nowrap' }, lastLogin(u)));
}

async function loadPolicy() {
  state.policy = await adminApi('GET', 'policy').catch(() => null);
}

async function load() {
  ui.error.clear();
  const r = await adminApi('GET', 'users', undefined, {
    domain: state.domain, q: state.q, offset: state.offset, limit: PAGE,
  });
  const users = listOf(r, 'users');
  const total = Number.isFinite(r?.total) ? r.total : users.length;
  ui.rows.replaceChildren(...users.map(row));
  ui.list.hidden = users.length === 0;
  const first = total === 0 ? 0 : state.offset + 1;
  const last = state.offset + users.length;
  ui.info.textContent = total === 0 ? (state.q ? 'No user matches.' : 'No user yet.')
    : `${first}–${last} of ${total}`;
  ui.prev.disabled = state.offset === 0;
  ui.next.disabled = last >= total;
}

async function edit(email, from) {
  ui.error.clear();
  try {
    const [u] = await Promise.all([adminApi('GET', `users/${encodeURIComponent(email)}`), loadPolicy()]);
    openUser(u.user && typeof u.user === 'object' ? u.user : u, { policy: state.policy, changed: reloadSoon, from });
  } catch (e) {
    fail(e, ui.error);
  }
}

function reloadSoon() {
  load().catch((e) => fail(e, ui.error));
}

async function add(ev) {
  ui.error.clear();
  await loadPolicy();
  openUser(null, { policy: state.policy, changed: reloadSoon, from: ev.currentTarget });
}

function queryFromHash() {
  const i = location.hash.indexOf('?');
  return i < 0 ? null : new URLSearchParams(location.hash.slice(i + 1)).get('q');
}

export default {
  id: 'users',
  title: 'Users',
  build() {
    const titleId = uid('title');
    ui.error = alertBox();
    ui.picker = domainPicker((d) => {
      state.domain = d;
      state.offset = 0;
      reloadSoon();
    }, 'All domains');
    ui.q = h('input', { type: 'search', id: uid('q'), maxLength: 200, spellcheck: false });
    const t = table('Users', ['Address', 'Name', 'Role', 'Status', 'Source', 'Aliases', 'Last sign-in']);
    ui.rows = t.body;
    ui.list = t;
    ui.info = h('p', { class: 'info', 'aria-live': 'polite' });
    ui.import = importCard(() => reloadSoon());
    ui.prev = h('button', {
      type: 'button',
      onclick: () => {
        state.offset = Math.max(0, state.offset - PAGE);
        reloadSoon();
      },
    }, 'Previous');
    ui.next = h('button', {
      type: 'button',
      onclick: () => {
        state.offset += PAGE;
        reloadSoon();
      },
    }, 'Next');
    return h('section', { class: 'page', id: 'page-users', 'aria-labelledby': titleId },
      h('div', { class: 'page-head' },
        h('h1', { id: titleId, tabindex: '-1' }, 'Users'),
        h('button', { type: 'button', class: 'primary', onclick: add }, 'Add user')),
      h('div', { class: 'toolbar' },
        ui.picker,
        h('form', {
          class: 'search', role: 'search', 'aria-label': 'Users',
          onsubmit: (ev) => {
            ev.preventDefault();
            state.q = ui.q.value.trim();
            state.offset = 0;
            reloadSoon();
          },
        }, h('label', { for: ui.q.id }, 'Search users'), ui.q, h('button', { type: 'submit' }, 'Search'))),
      ui.error,
      h('section', { class: 'card', 'aria-labelledby': 'users-list-h' },
        h('h2', { id: 'users-list-h', class: 'visually-hidden' }, 'User list'),
        ui.info, t,
        h('div', { class: 'pager' }, ui.prev, ui.next)),
      ui.import);
  },
  async show() {
    const q = queryFromHash();
    if (q !== null) {
      state.q = q;
      ui.q.value = q;
      state.offset = 0;
    }
    try {
      state.domain = await ui.picker.refresh();
      await Promise.all([load(), ui.import.refresh(state.domain)]);
    } catch (e) {
      fail(e, ui.error);
    }
  },
  reset() {
    Object.assign(state, { domain: '', q: '', offset: 0, policy: null });
    if (ui.q) ui.q.value = '';
  },
};
