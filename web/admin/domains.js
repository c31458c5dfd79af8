// domains.js — the Domains page (#/domains): a domain's routes (the
// customer's servers, tried in order), the recipient check, the addresses
// allowed to relay outgoing mail, the webhooks told of state changes, and
// the DKIM selector with its private key (PEM text, sent once, never shown
// again) — PATCH domains/D. Operators also add domains to a customer (POST
// domains) and delete them (DELETE domains/D; refused while mail is queued,
// unless forced after a second confirmation).

import { ApiError } from '/js/api.js';
import {
  alertBox, arrayOf, check, field, h, lines, listOf, uid,
} from './dom.js';
import {
  adminApi, ctx, domainPicker, enc, fail, forgetDomains, isOperator, say,
} from './ctx.js';

const ui = {};
let domain = '';
let routes = [];
let dkimSelector = ''; // as loaded: the key is sent again only with a new selector

// ------------------------------------------------------------------ routes editor

function renderRoutes(focusIndex) {
  const items = routes.map((r, i) => {
    const input = h('input', {
      type: 'text', value: r, id: uid('route'), spellcheck: false, placeholder: 'mail.example.com:25',
      oninput: (ev) => { routes[i] = ev.target.value; },
    });
    const move = (to) => {
      [routes[i], routes[to]] = [routes[to], routes[i]];
      renderRoutes(to);
    };
    return h('li', {},
      h('label', { for: input.id }, `Route ${i + 1}`),
      input,
      h('button', {
        type: 'button', disabled: i === 0, 'aria-label': `Up: move route ${i + 1} up`, onclick: () => move(i - 1),
      }, 'Up'),
      h('button', {
        type: 'button', disabled: i === routes.length - 1, 'aria-label': `Down: move route ${i + 1} down`,
        onclick: () => move(i + 1),
      }, 'Down'),
      h('button', {
        type: 'button', class: 'danger', 'aria-label': `Remove route ${i + 1}`,
        onclick: () => {
          routes.splice(i, 1);
          renderRoutes(Math.min(i, routes.length - 1));
        },
      }, 'Remove'));
  });
  ui.routes.replaceChildren(...items);
  if (focusIndex !== undefined && focusIndex >= 0) ui.routes.querySelectorAll('input')[focusIndex]?.focus();
}

// ------------------------------------------------------------------ settings

async function load() {
  ui.error.clear();
  domain = await ui.picker.refresh();
  ui.settings.hidden = !domain;
  ui.none.hidden = Boolean(domain);
  ui.del.hidden = !domain || !isOperator();
  if (!domain) return;
  const r = await adminApi('GET', `domains/${enc(domain)}`);
  const d = r.domain && typeof r.domain === 'object' ? r.domain : r;
  routes = arrayOf(d.routes);
  renderRoutes();
  ui.recipientCheck.checked = Boolean(d.recipient_check);
  ui.outbound.value = arrayOf(d.outbound_from).join('\n');
  ui.webhooks.value = arrayOf(d.webhooks ?? d.webhook).join('\n');
  dkimSelector = d.dkim_selector || '';
  ui.selector.value = dkimSelector;
  ui.key.value = '';
  const hasKey = Boolean(d.dkim_key || d.dkim_key_set || d.dkim);
  ui.keyState.textContent = hasKey ? 'A private key is installed; paste a new one to replace it.'
    : 'No key yet: outgoing mail is not signed.';
  ui.customer.textContent = d.customer ? `Customer: ${d.customer}` : '';
}

async function save(ev) {
  ev.preventDefault();
  ui.error.clear();
  const body = {
    routes: routes.map((r) => r.trim()).filter(Boolean),
    recipient_check: ui.recipientCheck.checked,
    outbound_from: lines(ui.outbound.value),
    webhooks: lines(ui.webhooks.value),
  };
  if (body.routes.length === 0) {
    ui.error.show('A domain needs at least one route: the address of your mail server.');
    return;
  }
  // The selector and the key go together: a new key with its selector, an
  // emptied selector removes both, an unchanged one sends neither.
  const selector = ui.selector.value.trim();
  const pem = ui.key.value.trim();
  if (pem) {
    if (!selector) {
      ui.error.show('Enter the DKIM selector the key is published under.');
      ui.selector.focus();
      return;
    }
    body.dkim_selector = selector;
    body.dkim_key_pem = `${pem}\n`;
  } else if (selector !== dkimSelector) {
    if (selector) {
      ui.error.show('A new DKIM selector needs its private key: paste the key below.');
      ui.key.focus();
      return;
    }
    body.dkim_selector = '';
    body.dkim_key_pem = '';
  }
  ui.save.disabled = true;
  try {
    await adminApi('PATCH', `domains/${enc(domain)}`, body);
    say(`Settings of ${domain} saved.`);
    forgetDomains();
    await load();
  } catch (e) {
    fail(e, ui.error);
  } finally {
    ui.save.disabled = false;
  }
}

// ------------------------------------------------------------------ operators: add, delete

async function fillCustomers() {
  const list = listOf(await adminApi('GET', 'customers', undefined, { customer: '' }), 'customers');
  const names = list.map((c) => c.name);
  ui.addCustomer.replaceChildren(...names.map((n) => h('option', { value: n }, n)));
  if (ctx.customer && names.includes(ctx.customer)) ui.addCustomer.value = ctx.customer;
}

async function addDomain(ev) {
  ev.preventDefault();
  ui.addError.clear();
  const body = {
    domain: ui.addName.value.trim().toLowerCase(),
    customer: ui.addCustomer.value,
    routes: ui.addRoutes.value.split(/[\s,]+/).filter(Boolean),
  };
  if (!body.domain || !body.customer || body.routes.length === 0) {
    ui.addError.show('Enter the domain, its customer and at least one route.');
    return;
  }
  try {
    await adminApi('POST', 'domains', body);
    say(`Domain ${body.domain} added to ${body.customer}.`);
    ui.addName.value = '';
    ui.addRoutes.value = '';
    forgetDomains();
    ctx.domain = body.domain;
    await load();
  } catch (e) {
    fail(e, ui.addError);
  }
}

async function deleteDomain() {
  ui.error.clear();
  if (!window.confirm(`Delete the domain ${domain}? Its users and their continuity mailboxes are deleted with it.`)) {
    return;
  }
  const gone = async (force) => {
    await adminApi('DELETE', `domains/${enc(domain)}`, undefined, force ? { force: 1 } : {});
    say(`Domain ${domain} deleted.`);
    forgetDomains();
    await load();
  };
  try {
    await gone(false);
  } catch (e) {
    if (e instanceof ApiError && e.code === 'refused' &&
      window.confirm(`${e.message}\n\nDelete it anyway, with that mail?`)) {
      try {
        await gone(true);
      } catch (e2) {
        fail(e2, ui.error);
      }
    } else {
      fail(e, ui.error);
    }
  }
}

// ------------------------------------------------------------------ page

export default {
  id: 'domains',
  title: 'Domains',
  build() {
    const titleId = uid('title');
    ui.error = alertBox();
    ui.addError = alertBox();
    ui.picker = domainPicker(() => load().catch((e) => fail(e, ui.error)));
    ui.routes = h('ol', { class: 'routes' });
    const rc = check('Check recipients: refuse mail for addresses that are not users or aliases here (550 5.1.1)');
    ui.recipientCheck = rc.control;
    const outF = field('Outbound addresses', h('textarea', { rows: 3, spellcheck: false }),
      'Your servers that may relay outgoing mail through us: one address or network (CIDR) a line.');
    ui.outbound = outF.control;
    const hookF = field('Webhooks', h('textarea', { rows: 2, spellcheck: false }),
      'Told of every change of state (outage, recovering, normal): one https:// URL a line.');
    ui.webhooks = hookF.control;
    const selF = field('DKIM selector', { type: 'text', spellcheck: false, placeholder: 'lifeboat' },
      'Empty it to stop signing and remove the key.');
    ui.selector = selF.control;
    ui.keyState = h('p', { class: 'hint' });
    const keyF = field('DKIM private key (PEM)', h('textarea', {
      rows: 4, spellcheck: false, autocomplete: 'off', placeholder: '-----BEGIN PRIVATE KEY-----',
    }));
    ui.key = keyF.control;
    ui.save = h('button', { type: 'submit', class: 'primary' }, 'Save');
    ui.customer = h('p', { class: 'hint' });
    ui.none = h('p', { class: 'info', hidden: true }, 'No domain yet.');
    ui.del = h('button', { type: 'button', class: 'danger', onclick: deleteDomain }, 'Delete this domain');
    ui.settings = h('form', { class: 'stack', novalidate: true, onsubmit: save },
      h('section', { class: 'card', 'aria-labelledby': 'dom-routes' },
        h('h2', { id: 'dom-routes' }, 'Routes'),
        ui.customer,
        h('p', { class: 'hint' }, 'Your mail servers, tried in this order (host or host:port).'),
        ui.routes,
        h('button', {
          type: 'button',
          onclick: () => {
            routes.push('');
            renderRoutes(routes.length - 1);
          },
        }, 'Add a route'),
        rc),
      h('section', { class: 'card', 'aria-labelledby': 'dom-out' },
        h('h2', { id: 'dom-out' }, 'Outgoing mail'),
        outF, selF, ui.keyState, keyF),
      h('section', { class: 'card', 'aria-labelledby': 'dom-hooks' },
        h('h2', { id: 'dom-hooks' }, 'Notifications'),
        hookF),
      h('div', { class: 'buttons' }, ui.save, ui.del));

    ui.addName = h('input', { type: 'text', id: uid('nd'), spellcheck: false, placeholder: 'example.com' });
    ui.addCustomer = h('select', { id: uid('nc') });
    ui.addRoutes = h('input', { type: 'text', id: uid('nr'), spellcheck: false, placeholder: 'mail.example.com:25' });
    ui.addCard = h('section', { class: 'card', 'aria-labelledby': 'dom-add', hidden: true },
      h('h2', { id: 'dom-add' }, 'Add a domain'),
      h('form', { class: 'settings', novalidate: true, onsubmit: addDomain },
        field('Domain', ui.addName),
        field('Customer', ui.addCustomer),
        field('Routes', ui.addRoutes, 'Separated by commas, in the order they are tried.'),
        ui.addError,
        h('div', { class: 'buttons' }, h('button', { type: 'submit' }, 'Add the domain'))));

    return h('section', { class: 'page', id: 'page-domains', 'aria-labelledby': titleId },
      h('div', { class: 'page-head' }, h('h1', { id: titleId, tabindex: '-1' }, 'Domains')),
      ui.picker, ui.error, ui.none, ui.settings, ui.addCard);
  },
  async show() {
    ui.addCard.hidden = !isOperator();
    try {
      await Promise.all([load(), isOperator() ? fillCustomers() : null]);
    } catch (e) {
      fail(e, ui.error);
    }
  },
};
