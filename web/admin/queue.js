// queue.js — the Queue page (#/queue): mail waiting for delivery (deferred,
// with the last reply of the receiving server) and held mail (GET queue),
// "Flush" (retry now: POST queue/flush {"domain"?}), hold and release
// (POST queue/ID/hold|release) and delete after a confirmation
// (DELETE queue/ID). It does not refresh itself: "Refresh" does.

import {
  alertBox, fmtTime, h, listOf, plural, table, uid,
} from './dom.js';
import {
  adminApi, domainPicker, enc, fail, say,
} from './ctx.js';

const ui = {};
let domain = '';

const recipientsOf = (m) => (Array.isArray(m.recipients)
  ? m.recipients.map((r) => (typeof r === 'string' ? r : r.rcpt || r.address)) : []);

function inDomain(m) {
  if (!domain) return true;
  const suffix = `@${domain}`;
  return recipientsOf(m).some((r) => r.toLowerCase().endsWith(suffix)) ||
    String(m.sender || '').toLowerCase().endsWith(suffix);
}

function act(m, verb, label) {
  return h('button', {
    type: 'button',
    class: verb === 'delete' ? 'danger' : undefined,
    'aria-label': `${label} message ${m.id}`,
    onclick: () => action(m, verb),
  }, label);
}

function row(m) {
  return h('tr', { dataset: { id: m.id } },
    h('th', { scope: 'row', class: 'nowrap mono' }, m.id),
    h('td', { class: 'wrap' }, m.sender || '<>'),
    h('td', { class: 'wrap' }, recipientsOf(m).join(', ')),
    h('td', {}, m.held ? h('span', { class: 'badge off' }, 'Held') : h('span', { class: 'badge warn' }, 'Deferred')),
    h('td', { class: 'num' }, String(m.attempts ?? 0)),
    h('td', { class: 'nowrap' }, m.held ? '—' : fmtTime(m.next_attempt) || 'now'),
    h('td', { class: 'wrap reply' }, m.last_reply || ''),
    h('td', { class: 'actions-cell' },
      m.held ? act(m, 'release', 'Release') : act(m, 'hold', 'Hold'),
      act(m, 'delete', 'Delete')));
}

async function load() {
  ui.error.clear();
  domain = await ui.picker.refresh();
  const all = listOf(await adminApi('GET', 'queue'), 'messages');
  const list = all.filter(inDomain);
  ui.rows.replaceChildren(...list.map(row));
  ui.list.hidden = list.length === 0;
  const held = list.filter((m) => m.held).length;
  ui.info.textContent = list.length === 0 ? 'The queue is empty.'
    : `${plural(list.length, 'message')} waiting${held ? `, ${held} of them held` : ''}.`;
}

async function action(m, verb) {
  ui.error.clear();
  if (verb === 'delete' && !window.confirm(`Delete message ${m.id} from ${m.sender || '<>'}? ` +
    'It is not delivered and no bounce is sent.')) return;
  try {
    if (verb === 'delete') await adminApi('DELETE', `queue/${enc(m.id)}`);
    else await adminApi('POST', `queue/${enc(m.id)}/${verb}`);
    say(`Message ${m.id} ${verb === 'delete' ? 'deleted' : verb === 'hold' ? 'held' : 'released'}.`);
    await load();
  } catch (e) {
    fail(e, ui.error);
  }
}

async function flush() {
  ui.error.clear();
  try {
    await adminApi('POST', 'queue/flush', domain ? { domain } : {});
    say(domain ? `Delivery of the mail for ${domain} is being tried now.` : 'Delivery of the queued mail is being tried now.');
    await load();
  } catch (e) {
    fail(e, ui.error);
  }
}

export default {
  id: 'queue',
  title: 'Queue',
  build() {
    const titleId = uid('title');
    ui.error = alertBox();
    ui.picker = domainPicker(() => load().catch((e) => fail(e, ui.error)), 'All domains');
    const t = table('Queued messages', ['Queue ID', 'Sender', 'Recipients', 'Status', 'Attempts', 'Next attempt',
      'Last reply', { hidden: true, text: 'Actions' }]);
    ui.rows = t.body;
    ui.list = t;
    ui.info = h('p', { class: 'info', 'aria-live': 'polite' });
    return h('section', { class: 'page', id: 'page-queue', 'aria-labelledby': titleId },
      h('div', { class: 'page-head' },
        h('h1', { id: titleId, tabindex: '-1' }, 'Queue'),
        h('div', { class: 'buttons' },
          h('button', { type: 'button', onclick: () => load().catch((e) => fail(e, ui.error)) }, 'Refresh'),
          h('button', { type: 'button', class: 'primary', onclick: flush }, 'Flush'))),
      h('div', { class: 'toolbar' }, ui.picker),
      h('p', { class: 'hint' }, 'Mail that your server has not taken yet, with its last answer. Flush tries again now; ' +
        'a held message waits until it is released. Mail diverted to continuity mailboxes is not here: the dashboard ' +
        'counts it.'),
      ui.error,
      h('section', { class: 'card', 'aria-labelledby': 'queue-h' },
        h('h2', { id: 'queue-h', class: 'visually-hidden' }, 'Queued messages'),
        ui.info, t));
  },
  show: () => load().catch((e) => fail(e, ui.error)),
};
