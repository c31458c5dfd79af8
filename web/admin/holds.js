// holds.js — the Legal holds page (#/holds): the holds in place (GET
// /api/v1/admin/archive/holds), placing one on a user or on the whole
// customer (POST) and releasing one after a confirmation (DELETE). A hold
// keeps archived mail past the retention window. The markup is in index.html.

import { api } from '/js/api.js';
import { fmtDate } from '/js/msgview.js';
import { asAlert } from './dom.js';
import { ctx, fail, isOperator } from './ctx.js';

const $ = (id) => document.getElementById(id);
let errorBox;

function cell(text) {
  const td = document.createElement('td');
  td.textContent = text ?? '';
  return td;
}

const holdName = (h) => (h.user ? h.user : `the whole customer ${h.customer}`);

async function load() {
  errorBox.clear();
  const r = await api('GET', '/api/v1/admin/archive/holds');
  const rows = r.holds.map((h) => {
    const tr = document.createElement('tr');
    const act = document.createElement('td');
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'danger';
    b.textContent = 'Release';
    b.setAttribute('aria-label', `Release the hold on ${holdName(h)}`);
    b.addEventListener('click', () => release(h));
    act.append(b);
    tr.append(cell(h.user || 'whole customer'), cell(h.customer), cell(fmtDate(h.created)), cell(h.created_by), act);
    return tr;
  });
  $('holds-rows').replaceChildren(...rows);
  $('holds-table').hidden = rows.length === 0;
  $('holds-info').textContent = rows.length === 0 ? 'No legal hold is in place.' : '';
}

async function place(body, input) {
  errorBox.clear();
  $('hold-status').textContent = '';
  try {
    const h = await api('POST', '/api/v1/admin/archive/holds', body);
    input.value = body.customer && !isOperator() ? input.value : '';
    $('hold-status').textContent = `Hold placed on ${holdName(h)}.`;
    await load();
  } catch (e) {
    fail(e, errorBox);
  }
}

async function release(h) {
  if (!window.confirm(`Release the legal hold on ${holdName(h)}? ` +
    'Archived mail older than the retention window can then be purged.')) return;
  errorBox.clear();
  $('hold-status').textContent = '';
  try {
    await api('DELETE', `/api/v1/admin/archive/holds/${h.id}`);
    $('hold-status').textContent = `Hold on ${holdName(h)} released.`;
    await load();
    $('hold-user').focus();
  } catch (e) {
    fail(e, errorBox);
  }
}

export default {
  id: 'holds',
  title: 'Legal holds',
  build() {
    errorBox = asAlert($('holds-error'));
    $('hold-user-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const v = $('hold-user').value.trim();
      if (!v) errorBox.show('Enter the address of the user whose mail is to be held.');
      else place({ user: v }, $('hold-user'));
    });
    $('hold-customer-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const v = $('hold-customer').value.trim();
      if (!v) errorBox.show('Enter the name of the customer whose mail is to be held.');
      else place({ customer: v }, $('hold-customer'));
    });
    return $('holds');
  },
  show() {
    // An admin holds their own customer; an operator the one they chose, if any.
    const customer = isOperator() ? ctx.customer : ctx.me?.customer;
    if (customer && !$('hold-customer').value) $('hold-customer').value = customer;
    return load().catch((e) => fail(e, errorBox));
  },
};
