// restrictions.js — the Restrictions page (#/restrictions): the customer's
// password policy (GET/PUT policy {"min_length","upper","lower","digit",
// "special"}), which every new password (the panel's, the webmail's, a
// reset's, an import's) must meet. An operator picks the customer first.

import {
  alertBox, check, describePolicy, field, h, uid,
} from './dom.js';
import {
  adminApi, ctx, fail, isOperator, say,
} from './ctx.js';

const ui = {};

async function load() {
  ui.error.clear();
  const needCustomer = isOperator() && !ctx.customer;
  ui.form.hidden = needCustomer;
  ui.pick.hidden = !needCustomer;
  if (needCustomer) return;
  const p = await adminApi('GET', 'policy');
  const pol = p?.policy && typeof p.policy === 'object' ? p.policy : p;
  ui.min.value = String(pol.min_length ?? 8);
  for (const k of ['upper', 'lower', 'digit', 'special']) ui[k].checked = Boolean(pol[k]);
  ui.now.textContent = `Now: ${describePolicy(pol)}${pol.default ? ' (the default)' : ''}`;
}

async function save(ev) {
  ev.preventDefault();
  ui.error.clear();
  const min = Number(ui.min.value);
  if (!Number.isInteger(min) || min < 1) {
    ui.error.show('The minimum length is a whole number of characters, at least 1.');
    ui.min.focus();
    return;
  }
  const body = {
    min_length: min, upper: ui.upper.checked, lower: ui.lower.checked, digit: ui.digit.checked, special: ui.special.checked,
  };
  try {
    await adminApi('PUT', 'policy', body);
    say(`Password policy saved: ${describePolicy(body)}`);
    await load();
  } catch (e) {
    fail(e, ui.error);
  }
}

export default {
  id: 'restrictions',
  title: 'Restrictions',
  build() {
    const titleId = uid('title');
    ui.error = alertBox();
    const minF = field('Minimum length', { type: 'number', min: 1, max: 128, step: 1 });
    ui.min = minF.control;
    const classes = [
      ['upper', 'At least one upper-case letter'],
      ['lower', 'At least one lower-case letter'],
      ['digit', 'At least one digit'],
      ['special', 'At least one special character'],
    ].map(([k, label]) => {
      const c = check(label);
      ui[k] = c.control;
      return c;
    });
    ui.now = h('p', { class: 'hint' });
    ui.pick = h('p', { class: 'info', hidden: true }, 'The password policy is a customer\'s: choose the customer at the top first.');
    ui.form = h('form', { class: 'settings', novalidate: true, onsubmit: save },
      h('fieldset', {}, h('legend', {}, 'A new password must have'), minF, classes),
      ui.now,
      h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'primary' }, 'Save')));
    return h('section', { class: 'page', id: 'page-restrictions', 'aria-labelledby': titleId },
      h('div', { class: 'page-head' }, h('h1', { id: titleId, tabindex: '-1' }, 'Restrictions')),
      ui.error,
      h('section', { class: 'card', 'aria-labelledby': 'pol-h' },
        h('h2', { id: 'pol-h' }, 'Password policy'),
        h('p', { class: 'hint' }, 'Every new password of the customer\'s users must meet it: set here, in the webmail, ' +
          'by a reset link or in an import. Passwords already set stay valid.'),
        ui.pick, ui.form));
  },
  show: () => load().catch((e) => fail(e, ui.error)),
};
