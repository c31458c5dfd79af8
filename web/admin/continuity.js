// continuity.js — the Continuity service page (#/continuity), per domain:
// continuity on or off (always for all users of the domain) and "send
// outgoing e-mails to own mail server during server failure" (PUT
// domains/D/continuity), the subscription it depends on, and the readiness
// panel (GET readiness?domain=D): who could not log in during an outage
// and why, with what to do about each (the server's reasons, by code).

import {
  alertBox, check, fmtTime, h, listOf, plural, stateBadge, table, uid,
} from './dom.js';
import {
  adminApi, domainPicker, enc, fail, forgetDomains, say,
} from './ctx.js';

const ui = {};
let domain = '';

// What the admin can do about a reason the server gives (by its code); the
// server's own "fix" text wins when it sends one.
const FIX = {
  no_password: 'Set a password on the Users page, or let the user choose one with "Forgot password?".',
  never_logged_in: 'Ask the user to sign in to the webmail once, so they know the address and the password work.',
  suspended: 'Activate the user on the Users page, if they should receive mail during an outage.',
  not_activated: 'Activate the user on the Users page, if they should receive mail during an outage.',
  ldap_no_cached_password: 'Ask the user to sign in once while the directory is reachable: the panel keeps their password for the day it is not.',
  no_alt_email: 'Add an alternate address, so the user can reset a forgotten password during an outage.',
};

function subscriptionText(d, customer) {
  const s = customer?.subscription ?? d.subscription;
  const state = typeof s === 'object' && s ? s.state : s;
  const end = (typeof s === 'object' && s ? s.end : null) ?? d.subscription_end ?? customer?.subscription_end;
  if (!state) return 'Not known here: ask your service provider.';
  if (state === 'active') return end ? `Active until ${fmtTime(end)}.` : 'Active.';
  if (state === 'cancelled') return end ? `Cancelled; it ends ${fmtTime(end)}.` : 'Cancelled.';
  if (state === 'none') return 'None: continuity and the archive begin when the subscription starts.';
  return String(state);
}

async function loadSettings() {
  const d = await adminApi('GET', `domains/${enc(domain)}`);
  const dom = d.domain && typeof d.domain === 'object' ? d.domain : d;
  ui.enabled.checked = Boolean(dom.continuity ?? dom.enabled);
  ui.outgoing.checked = Boolean(dom.outgoing_to_own_server);
  ui.outgoing.disabled = !ui.enabled.checked;
  ui.state.replaceChildren(stateBadge(dom.state || 'normal'));
  // The customer's row has the subscription's dates (an admin sees their own customer).
  let customer = null;
  if (dom.customer) {
    const list = listOf(await adminApi('GET', 'customers', undefined, { customer: '' }).catch(() => []), 'customers');
    customer = list.find((c) => c.name === dom.customer) || null;
  }
  ui.subscription.textContent = subscriptionText(dom, customer);
}

/** The server's fragments ("has no password", "set a password ...") as sentences. */
export function sentence(text) {
  const t = String(text || '').trim();
  if (!t) return '';
  return `${t[0].toUpperCase()}${t.slice(1)}${/[.!?]$/.test(t) ? '' : '.'}`;
}

function reasonList(reasons, what) {
  return h('ul', { class: 'reasons' }, reasons.map((r) => h('li', {}, sentence(what(r)))));
}

async function loadReadiness() {
  const r = await adminApi('GET', 'readiness', undefined, { domain });
  const users = listOf(r, 'users');
  const notReady = users.filter((u) => !u.ready);
  const shown = ui.showAll.checked ? users : notReady;
  ui.readyRows.replaceChildren(...shown.map((u) => {
    const reasons = Array.isArray(u.reasons) ? u.reasons : [];
    return h('tr', { dataset: { email: u.email } },
      h('th', { scope: 'row', class: 'wrap' },
        h('a', { href: `#/users?q=${enc(u.email)}` }, u.email)),
      h('td', {}, u.ready ? 'Ready' : 'Not ready'),
      h('td', { class: 'wrap' }, reasonList(reasons, (x) => x.text || x.code)),
      h('td', { class: 'wrap' }, reasonList(reasons, (x) => x.fix || FIX[x.code] || '')));
  }));
  ui.readyTable.hidden = shown.length === 0;
  ui.readySummary.textContent = users.length === 0 ? 'This domain has no users yet.'
    : `${users.length - notReady.length} of ${plural(users.length, 'user')} ready for an outage` +
      (notReady.length ? `; ${notReady.length} not ready.` : '.');
}

async function load() {
  ui.error.clear();
  domain = await ui.picker.refresh();
  ui.body.hidden = !domain;
  ui.none.hidden = Boolean(domain);
  if (!domain) return;
  await Promise.all([loadSettings(), loadReadiness()]);
}

async function save(ev) {
  ev.preventDefault();
  ui.error.clear();
  const body = { enabled: ui.enabled.checked, outgoing_to_own_server: ui.enabled.checked && ui.outgoing.checked };
  ui.save.disabled = true;
  try {
    await adminApi('PUT', `domains/${enc(domain)}/continuity`, body);
    forgetDomains();
    say(body.enabled
      ? `Continuity is on for every user of ${domain}${body.outgoing_to_own_server
        ? '; their outgoing mail is sent to your own server too when it is back' : ''}.`
      : `Continuity is off for ${domain}.`);
    await loadSettings();
  } catch (e) {
    fail(e, ui.error);
  } finally {
    ui.save.disabled = false;
  }
}

export default {
  id: 'continuity',
  title: 'Continuity',
  build() {
    const titleId = uid('title');
    ui.error = alertBox();
    ui.picker = domainPicker(() => load().catch((e) => fail(e, ui.error)));
    const enabled = check('Enable the continuity service for all users of this domain');
    const outgoing = check('Send outgoing e-mails to own mail server during server failure');
    ui.enabled = enabled.control;
    ui.outgoing = outgoing.control;
    ui.enabled.addEventListener('change', () => { ui.outgoing.disabled = !ui.enabled.checked; });
    ui.state = h('span');
    ui.subscription = h('span');
    ui.save = h('button', { type: 'submit', class: 'primary' }, 'Save');
    ui.showAll = h('input', { type: 'checkbox', id: uid('all'), onchange: () => loadReadiness().catch((e) => fail(e, ui.error)) });
    ui.readySummary = h('p', { class: 'info', 'aria-live': 'polite' });
    const t = table('Users and their readiness for an outage', ['User', 'Ready', 'Why not', 'What to do']);
    ui.readyRows = t.body;
    ui.readyTable = t;
    ui.none = h('p', { class: 'info', hidden: true }, 'No domain yet: an operator adds domains.');
    ui.body = h('div', { class: 'stack' },
      h('section', { class: 'card', 'aria-labelledby': 'cont-settings' },
        h('h2', { id: 'cont-settings' }, 'Settings'),
        h('dl', { class: 'facts' },
          h('dt', {}, 'State'), h('dd', {}, ui.state),
          h('dt', {}, 'Subscription'), h('dd', {}, ui.subscription)),
        h('form', { class: 'settings', novalidate: true, onsubmit: save },
          enabled,
          h('p', { class: 'hint' }, 'When your mail server fails, mail for every activated user of the domain goes to ' +
            'their continuity mailbox, and is re-delivered to your server when it is back.'),
          outgoing,
          h('p', { class: 'hint' }, 'Mail your users send from the webmail during the failure is also re-delivered ' +
            'to your server, so it is in their Sent folder there.'),
          h('div', { class: 'buttons' }, ui.save))),
      h('section', { class: 'card', 'aria-labelledby': 'cont-ready' },
        h('h2', { id: 'cont-ready' }, 'Readiness'),
        h('p', { class: 'hint' }, 'Users who could not sign in to the webmail during an outage today, and why.'),
        ui.readySummary,
        h('div', { class: 'check' }, ui.showAll, h('label', { for: ui.showAll.id }, 'Show ready users too')),
        t));
    return h('section', { class: 'page', id: 'page-continuity', 'aria-labelledby': titleId },
      h('div', { class: 'page-head' }, h('h1', { id: titleId, tabindex: '-1' }, 'Continuity service')),
      ui.picker, ui.error, ui.none, ui.body);
  },
  show: () => load().catch((e) => fail(e, ui.error)),
};
