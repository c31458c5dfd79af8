// users-import.js — the Users page's CSV import: a file (or pasted text) in
// SPEC.md's format (a header line; columns email, name, alt_email, aliases,
// role, active, password) sent as text/csv to POST users/import?domain=D.
// The server checks every line first, imports the good ones in one
// transaction and answers {"imported","updated","errors":[{"line","error"}]}:
// the report shows each refused line by number with the reason.

import { apiText } from '/js/api.js';
import {
  alertBox, field, h, plural, table, uid,
} from './dom.js';
import {
  adminPath, domainName, domains, fail,
} from './ctx.js';

const EXAMPLE = 'email,name,alt_email,aliases,role,active,password\n' +
  'dave@example.com,Dave Smith,dave.smith@gmail.example,d.smith@example.com,user,yes,';

export function importCard(imported) {
  const ui = {};
  ui.error = alertBox();
  ui.domain = h('select');
  ui.file = h('input', { type: 'file', accept: '.csv,text/csv,text/plain' });
  ui.text = h('textarea', { rows: 6, spellcheck: false, placeholder: EXAMPLE });
  ui.button = h('button', { type: 'submit', class: 'primary' }, 'Import');
  ui.summary = h('p', { class: 'notice', role: 'status' });
  const t = table('Refused lines', ['Line', 'Why']);
  ui.report = t;
  ui.report.hidden = true;

  async function fillDomains(preferred) {
    const names = (await domains()).map(domainName);
    const keep = preferred || ui.domain.value;
    ui.domain.replaceChildren(...names.map((n) => h('option', { value: n }, n)));
    if (names.includes(keep)) ui.domain.value = keep;
  }

  ui.file.addEventListener('change', async () => {
    const f = ui.file.files?.[0];
    if (f) ui.text.value = await f.text();
  });

  async function submit(ev) {
    ev.preventDefault();
    ui.error.clear();
    ui.summary.textContent = '';
    ui.report.hidden = true;
    const csv = ui.text.value;
    if (!ui.domain.value) {
      ui.error.show('Choose the domain to import into.');
      return;
    }
    if (!csv.trim()) {
      ui.error.show('Choose a CSV file or paste its lines.');
      ui.file.focus();
      return;
    }
    ui.button.disabled = true;
    try {
      const r = await apiText('POST', adminPath('users/import', { domain: ui.domain.value }), csv, 'text/csv');
      const errors = Array.isArray(r?.errors) ? r.errors : [];
      ui.summary.textContent = `${plural(r?.imported ?? 0, 'user')} imported, ${r?.updated ?? 0} updated` +
        (errors.length ? `, ${plural(errors.length, 'line')} refused (below).` : '.');
      t.body.replaceChildren(...errors.map((e) => h('tr', {},
        h('td', { class: 'num' }, String(e.line)), h('td', { class: 'wrap' }, e.error))));
      ui.report.hidden = errors.length === 0;
      imported();
    } catch (e) {
      fail(e, ui.error);
    } finally {
      ui.button.disabled = false;
    }
  }

  const titleId = uid('import');
  const card = h('section', { class: 'card', 'aria-labelledby': titleId },
    h('h2', { id: titleId }, 'Import users from a CSV file'),
    h('p', { class: 'hint' }, 'A header line, then one user a line. Columns: email (required), name, alt_email, ' +
      'aliases (separated by spaces), role, active (yes/no), password. Every line is checked first; a bad line is ' +
      'reported and skipped, the others are imported together; users already there are updated.'),
    h('form', { class: 'settings', novalidate: true, onsubmit: submit },
      field('Import into the domain', ui.domain),
      field('CSV file', ui.file),
      field('or the lines themselves', ui.text),
      ui.error,
      h('div', { class: 'buttons' }, ui.button)),
    ui.summary, t);
  // Filled each time the page is shown (the domains may have changed); the
  // domain chosen for the list is the first guess.
  card.refresh = fillDomains;
  return card;
}
