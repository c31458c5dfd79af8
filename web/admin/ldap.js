// ldap.js — the LDAP page (#/ldap), per domain: the directory's settings
// (GET/PUT domains/D/ldap; the bind password is write-only: the server keeps
// it and never sends it back, so the field stays empty and an empty field
// keeps the stored one), "Test connection" (POST domains/D/ldap/test),
// "Sync now" (POST domains/D/ldap/sync) and the last sync's report.

import {
  alertBox, check, field, fmtTime, h, plural, uid,
} from './dom.js';
import {
  adminApi, domainPicker, enc, fail, say,
} from './ctx.js';

const ui = {};
let domain = '';
let hasPassword = false;

/** Seconds as the config's duration text (3h, 30m, 45s); text stays as it is. */
export function durationText(v) {
  if (typeof v !== 'number') return v ? String(v) : '';
  if (v % 86400 === 0) return `${v / 86400}d`;
  if (v % 3600 === 0) return `${v / 3600}h`;
  if (v % 60 === 0) return `${v / 60}m`;
  return `${v}s`;
}

function renderReport(r, title) {
  if (!r) {
    ui.report.replaceChildren(h('p', { class: 'info' }, 'No sync yet.'));
    return;
  }
  const errors = Array.isArray(r.errors) ? r.errors : [];
  const count = Number(r.error_count ?? errors.length) || 0;
  ui.report.replaceChildren(
    h('p', {}, title, r.at ? [' (', h('time', {}, fmtTime(r.at)), ')'] : null, ': ',
      r.ok === false ? h('strong', { class: 'error' }, 'it did not finish.') : 'finished.'),
    h('dl', { class: 'facts' },
      Number.isFinite(r.entries) ? [h('dt', {}, 'Directory entries read'), h('dd', {}, String(r.entries))] : null,
      h('dt', {}, 'Added'), h('dd', {}, String(r.added ?? 0)),
      h('dt', {}, 'Updated'), h('dd', {}, String(r.updated ?? 0)),
      h('dt', {}, 'Suspended (gone from the directory)'), h('dd', {}, String(r.suspended ?? 0)),
      h('dt', {}, 'Aliases'), h('dd', {}, String(r.aliases ?? 0))),
    count ? h('div', {},
      h('p', { class: 'error' }, `${plural(count, 'problem')}${count > errors.length ? ` (the first ${errors.length})` : ''}:`),
      h('ul', {}, errors.map((e) => h('li', {}, typeof e === 'string' ? e : e.error || e.message || JSON.stringify(e)))))
      : r.error ? h('p', { class: 'error' }, r.error) : null);
}

async function load() {
  ui.error.clear();
  ui.result.textContent = '';
  domain = await ui.picker.refresh();
  ui.body.hidden = !domain;
  if (!domain) return;
  const r = await adminApi('GET', `domains/${enc(domain)}/ldap`);
  const s = r?.ldap && typeof r.ldap === 'object' ? r.ldap : (r || {});
  ui.url.value = s.url || '';
  ui.bindDn.value = s.bind_dn || '';
  ui.base.value = s.base || '';
  ui.filter.value = s.filter || '';
  ui.interval.value = s.interval_text || durationText(s.interval);
  ui.password.value = '';
  ui.starttls.checked = Boolean(s.starttls);
  hasPassword = Boolean(s.bind_password_set);
  ui.password.placeholder = hasPassword ? '(unchanged)' : '';
  renderReport(s.last_sync || s.report || r?.last_sync || null, 'Last sync');
}

function settingsBody() {
  const body = {
    url: ui.url.value.trim(),
    bind_dn: ui.bindDn.value.trim(),
    base: ui.base.value.trim(),
    filter: ui.filter.value.trim(),
    interval: ui.interval.value.trim(),
    starttls: ui.starttls.checked,
  };
  if (ui.password.value) body.bind_password = ui.password.value;
  if (!body.filter) delete body.filter;
  if (!body.interval) delete body.interval;
  return body;
}

async function save(ev) {
  ev.preventDefault();
  ui.error.clear();
  ui.result.textContent = '';
  const body = settingsBody();
  if (!body.url || !body.base) {
    ui.error.show('Enter the directory\'s URL (ldap:// or ldaps://) and the base DN.');
    return;
  }
  ui.save.disabled = true;
  try {
    await adminApi('PUT', `domains/${enc(domain)}/ldap`, body);
    say(`LDAP settings of ${domain} saved.`);
    await load();
  } catch (e) {
    fail(e, ui.error);
  } finally {
    ui.save.disabled = false;
  }
}

async function testConnection() {
  ui.error.clear();
  ui.result.textContent = 'Testing…';
  ui.test.disabled = true;
  try {
    const r = await adminApi('POST', `domains/${enc(domain)}/ldap/test`);
    const n = r?.users ?? r?.entries;
    if (r?.ok === false) {
      ui.result.textContent = '';
      ui.error.show(`The directory did not answer as expected: ${r.error || r.reason || 'no reason given'}.`);
    } else {
      ui.result.textContent =
        `Connected and signed in to the directory${Number.isFinite(n) ? `; ${plural(n, 'user')} found` : ''}.`;
    }
  } catch (e) {
    ui.result.textContent = '';
    fail(e, ui.error);
  } finally {
    ui.test.disabled = false;
  }
}

async function syncNow() {
  ui.error.clear();
  ui.result.textContent = 'Synchronising…';
  ui.sync.disabled = true;
  try {
    const r = await adminApi('POST', `domains/${enc(domain)}/ldap/sync`);
    const report = r?.report || r;
    renderReport(report, 'This sync');
    if (report?.ok === false) {
      ui.result.textContent = '';
      const first = Array.isArray(report.errors) && report.errors.length ? report.errors[0] : null;
      const why = typeof first === 'string' ? first : first?.error || first?.message || '';
      ui.error.show(`The sync failed${why ? `: ${why}` : ''}.`);
    } else {
      ui.result.textContent = 'Sync finished.';
    }
  } catch (e) {
    ui.result.textContent = '';
    fail(e, ui.error);
  } finally {
    ui.sync.disabled = false;
  }
}

export default {
  id: 'ldap',
  title: 'LDAP',
  build() {
    const titleId = uid('title');
    ui.error = alertBox();
    ui.picker = domainPicker(() => load().catch((e) => fail(e, ui.error)));
    const urlF = field('Directory URL', { type: 'text', spellcheck: false, placeholder: 'ldaps://dc1.example.com' },
      'ldaps:// for TLS from the start; with ldap://, tick StartTLS below.');
    const tls = check('Use StartTLS (for an ldap:// URL)');
    ui.starttls = tls.control;
    const dnF = field('Bind DN', { type: 'text', spellcheck: false, placeholder: 'CN=lifeboat,OU=Service,DC=example,DC=com' });
    const pwF = field('Bind password', { type: 'password', autocomplete: 'new-password' },
      'Kept by the server and never shown again; leave empty to keep the current one.');
    const baseF = field('Base DN', { type: 'text', spellcheck: false, placeholder: 'DC=example,DC=com' });
    const filterF = field('Filter', { type: 'text', spellcheck: false, placeholder: '(&(objectClass=person)(mail=*))' });
    const intF = field('Sync every', { type: 'text', spellcheck: false, placeholder: '3h' }, 'For example 30m, 3h or 1d.');
    Object.assign(ui, {
      url: urlF.control, bindDn: dnF.control, password: pwF.control, base: baseF.control,
      filter: filterF.control, interval: intF.control,
    });
    ui.save = h('button', { type: 'submit', class: 'primary' }, 'Save');
    ui.test = h('button', { type: 'button', onclick: testConnection }, 'Test connection');
    ui.sync = h('button', { type: 'button', onclick: syncNow }, 'Sync now');
    ui.result = h('p', { class: 'notice', role: 'status' });
    ui.report = h('div', { class: 'report' });
    ui.body = h('div', { class: 'stack' },
      h('section', { class: 'card', 'aria-labelledby': 'ldap-set' },
        h('h2', { id: 'ldap-set' }, 'Directory'),
        h('p', { class: 'hint' }, 'Users of the domain are the directory\'s entries under the base DN that match the ' +
          'filter; aliases come from proxyAddresses (smtp:) and mailAlternateAddress. Users who leave the directory ' +
          'are suspended, never deleted. Sign-ins are checked against the directory, and against the password ' +
          'kept from the last good sign-in when it cannot be reached.'),
        h('form', { class: 'settings', novalidate: true, onsubmit: save },
          urlF, tls, dnF, pwF, baseF, filterF, intF,
          h('div', { class: 'buttons' }, ui.save, ui.test, ui.sync)),
        ui.result),
      h('section', { class: 'card', 'aria-labelledby': 'ldap-report' },
        h('h2', { id: 'ldap-report' }, 'Sync report'),
        ui.report));
    return h('section', { class: 'page', id: 'page-ldap', 'aria-labelledby': titleId },
      h('div', { class: 'page-head' }, h('h1', { id: titleId, tabindex: '-1' }, 'LDAP / Active Directory')),
      ui.picker, ui.error, ui.body);
  },
  show: () => load().catch((e) => fail(e, ui.error)),
};
