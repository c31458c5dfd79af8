// audit.js — the Audit page (#/audit): every view of someone else's archived
// mail, export, release and legal hold, newest first (GET
// /api/v1/admin/audit). The markup is in index.html.

import { api } from '/js/api.js';
import { fmtDate } from '/js/msgview.js';
import { asAlert } from './dom.js';
import { fail } from './ctx.js';

const $ = (id) => document.getElementById(id);
const AUDIT_LIMIT = 200;

function cell(text, className) {
  const td = document.createElement('td');
  td.textContent = text ?? '';
  if (className) td.className = className;
  return td;
}

let errorBox;

async function load() {
  errorBox.clear();
  const r = await api('GET', `/api/v1/admin/audit?limit=${AUDIT_LIMIT}`);
  const rows = r.entries.map((a) => {
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

export default {
  id: 'audit',
  title: 'Audit',
  build() {
    errorBox = asAlert($('audit-error'));
    $('audit-refresh').addEventListener('click', () => load().catch((e) => fail(e, errorBox)));
    return $('audit');
  },
  show: () => load().catch((e) => fail(e, errorBox)),
};
