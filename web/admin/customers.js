// customers.js — the Customers page (#/customers, operators only): every
// customer with its subscription (GET customers), adding one (POST
// customers), starting or extending a subscription by a number of months
// (POST customers/NAME/subscription {"months"}; the minimum term is 12) and
// deleting a customer (DELETE customers/NAME; refused while it has domains).

import {
  alertBox, field, fmtTime, h, listOf, table, uid,
} from './dom.js';
import { adminApi, ctx, enc, fail, say } from './ctx.js';

const ui = {};
const MIN_MONTHS = 12;

function subscriptionText(c) {
  const s = typeof c.subscription === 'object' && c.subscription ? c.subscription.state : c.subscription;
  if (s === 'active') return 'Active';
  if (s === 'cancelled') return 'Cancelled';
  return 'None';
}

function row(c) {
  const monthsId = uid('months');
  const months = h('input', {
    type: 'number', id: monthsId, min: MIN_MONTHS, step: 1, value: String(MIN_MONTHS), class: 'months',
  });
  return h('tr', { dataset: { customer: c.name } },
    h('th', { scope: 'row' }, c.name),
    h('td', {}, subscriptionText(c)),
    h('td', { class: 'nowrap' }, fmtTime(c.subscription_start ?? c.subscription?.start)),
    h('td', { class: 'nowrap' }, fmtTime(c.subscription_end ?? c.subscription?.end)),
    h('td', {},
      h('form', {
        class: 'inline-form compact', novalidate: true,
        onsubmit: (ev) => {
          ev.preventDefault();
          subscribe(c.name, Number(months.value));
        },
      },
      h('label', { for: monthsId, class: 'visually-hidden' }, `Months of subscription for ${c.name}`),
      months,
      h('button', { type: 'submit', 'aria-label': `Subscribe ${c.name} for these months` }, 'Subscribe'))),
    h('td', {},
      h('button', {
        type: 'button', class: 'danger', 'aria-label': `Delete the customer ${c.name}`, onclick: () => remove(c.name),
      }, 'Delete')));
}

async function load() {
  ui.error.clear();
  const list = listOf(await adminApi('GET', 'customers', undefined, { customer: '' }), 'customers');
  ui.rows.replaceChildren(...list.map(row));
  ui.info.textContent = list.length === 0 ? 'No customer yet.' : '';
}

async function subscribe(name, months) {
  ui.error.clear();
  if (!Number.isInteger(months) || months < MIN_MONTHS) {
    ui.error.show(`A subscription runs at least ${MIN_MONTHS} months.`);
    return;
  }
  try {
    await adminApi('POST', `customers/${enc(name)}/subscription`, { months }, { customer: '' });
    say(`Subscription of ${name}: ${months} months from now.`);
    await load();
  } catch (e) {
    fail(e, ui.error);
  }
}

async function remove(name) {
  ui.error.clear();
  if (!window.confirm(`Delete the customer ${name}?`)) return;
  try {
    await adminApi('DELETE', `customers/${enc(name)}`, undefined, { customer: '' });
    say(`Customer ${name} deleted.`);
    if (ctx.customer === name) ctx.customer = '';
    ctx.onCustomersChanged();
    await load();
  } catch (e) {
    fail(e, ui.error);
  }
}

async function add(ev) {
  ev.preventDefault();
  ui.error.clear();
  const name = ui.name.value.trim();
  if (!name) {
    ui.error.show('Enter the new customer\'s name.');
    ui.name.focus();
    return;
  }
  try {
    await adminApi('POST', 'customers', { name }, { customer: '' });
    ui.name.value = '';
    say(`Customer ${name} added.`);
    ctx.onCustomersChanged();
    await load();
  } catch (e) {
    fail(e, ui.error);
  }
}

export default {
  id: 'customers',
  title: 'Customers',
  operatorOnly: true,
  build() {
    const titleId = uid('title');
    ui.error = alertBox();
    ui.info = h('p', { class: 'info' });
    const t = table('Customers', ['Customer', 'Subscription', 'Started', 'Ends',
      'Months', { hidden: true, text: 'Actions' }]);
    ui.rows = t.body;
    ui.name = h('input', { type: 'text', spellcheck: false, autocomplete: 'off' });
    return h('section', { class: 'page', id: 'page-customers', 'aria-labelledby': titleId },
      h('div', { class: 'page-head' }, h('h1', { id: titleId, tabindex: '-1' }, 'Customers')),
      ui.error,
      h('section', { class: 'card', 'aria-labelledby': 'cust-list' },
        h('h2', { id: 'cust-list' }, 'Customers and subscriptions'),
        h('p', { class: 'hint' }, `A subscription starts continuity and the archive; its minimum term is ${MIN_MONTHS} months.`),
        t, ui.info),
      h('section', { class: 'card', 'aria-labelledby': 'cust-add' },
        h('h2', { id: 'cust-add' }, 'Add a customer'),
        h('form', { class: 'inline-form', novalidate: true, onsubmit: add },
          field('Name', ui.name), h('button', { type: 'submit' }, 'Add the customer'))));
  },
  show: () => load().catch((e) => fail(e, ui.error)),
};
