// user-dialog.js — one user in a modal dialog, as in the products admins
// know ("User > User Settings", "Aliases" tab): adding a user (POST users),
// then editing name, role, alternate address and status (PATCH users/EMAIL),
// setting a password with the policy shown (a refused one says the failing
// rule: the server's message for code "password_policy"), unlocking after
// failed sign-ins (POST users/EMAIL/unlock), deleting (DELETE users/EMAIL),
// and the aliases (POST users/EMAIL/aliases, DELETE users/EMAIL/aliases/A).
// The native <dialog> keeps the focus inside; closing it gives the focus
// back to what opened it.

import { ApiError } from '/js/api.js';
import {
  alertBox, check, describePolicy, field, h, uid,
} from './dom.js';
import { adminApi, enc, errorText, fail, isOperator, say } from './ctx.js';
import { lastLogin, readyText, statusText } from './user-status.js';

const ui = {};
let user = null; // the user being edited; null while adding
let opener = null;
let onChanged = () => {};

const aliasesOf = (u) => (Array.isArray(u?.aliases) ? u.aliases.map((a) => (typeof a === 'string' ? a : a.alias)) : []);

function roleOptions() {
  const roles = [['user', 'User'], ['admin', 'Administrator']];
  if (isOperator()) roles.push(['operator', 'Operator']);
  return roles.map(([v, t]) => h('option', { value: v }, t));
}

// ------------------------------------------------------------------ tabs

function selectTab(which, focus = false) {
  for (const [tab, panel] of ui.tabs) {
    const on = tab === which;
    tab.setAttribute('aria-selected', String(on));
    tab.tabIndex = on ? 0 : -1;
    panel.hidden = !on;
  }
  if (focus) which.focus();
}

function tabKeys(ev) {
  const tabs = ui.tabs.map(([t]) => t).filter((t) => !t.hidden);
  const i = tabs.indexOf(ev.target);
  if (i < 0) return;
  let next = null;
  if (ev.key === 'ArrowRight') next = tabs[(i + 1) % tabs.length];
  else if (ev.key === 'ArrowLeft') next = tabs[(i - 1 + tabs.length) % tabs.length];
  else if (ev.key === 'Home') next = tabs[0];
  else if (ev.key === 'End') next = tabs.at(-1);
  if (next) {
    ev.preventDefault();
    selectTab(next, true);
  }
}

// ------------------------------------------------------------------ filling in

function fill(u) {
  user = u;
  const adding = !u;
  ui.title.textContent = adding ? 'Add a user' : u.email;
  ui.email.value = u?.email || '';
  ui.email.readOnly = !adding;
  ui.emailField.hidden = !adding;
  ui.name.value = u?.name || '';
  ui.role.replaceChildren(...roleOptions());
  ui.role.value = u?.role || 'user';
  ui.alt.value = u?.alt_email || '';
  ui.active.checked = adding ? true : Boolean(u.active);
  ui.save.textContent = adding ? 'Add the user' : 'Save';
  ui.initialPw.hidden = !adding;
  ui.initialPw.control.value = '';
  // The policy beside the first password when adding; beside "New password" when editing.
  ui.policyHints[0].hidden = !adding || !ui.policyHints[0].textContent;
  ui.editOnly.forEach((el) => { el.hidden = adding; });
  ui.aliasTab.hidden = adding;
  ui.ldapNote.hidden = u?.source !== 'ldap';
  ui.facts.replaceChildren(...(adding ? [] : [
    h('dt', {}, 'Status'), h('dd', {}, statusText(u)),
    h('dt', {}, 'Source'), h('dd', {}, u.source === 'ldap' ? 'LDAP directory' : 'Local'),
    h('dt', {}, 'Password'), h('dd', {}, u.password === undefined ? '—' : u.password ? 'Set' : 'None yet'),
    h('dt', {}, 'Last sign-in'), h('dd', {}, lastLogin(u)),
    h('dt', {}, 'Ready for an outage'), h('dd', {}, readyText(u)),
  ]));
  if (!adding) ui.toggle.textContent = u.active ? 'Suspend' : 'Activate';
  ui.newPw.value = '';
  renderAliases();
}

function renderAliases() {
  const list = aliasesOf(user);
  ui.aliasList.replaceChildren(...list.map((a) => h('li', {},
    h('span', { class: 'alias' }, a),
    h('button', {
      type: 'button', class: 'danger', 'aria-label': `Remove the alias ${a}`, onclick: () => removeAlias(a),
    }, 'Remove'))));
  ui.aliasNone.hidden = list.length > 0;
}

async function reload() {
  const u = await adminApi('GET', `users/${enc(user.email)}`);
  fill(u.user && typeof u.user === 'object' ? u.user : u);
}

function clearMessages() {
  ui.error.clear();
  ui.pwError.clear();
  ui.aliasError.clear();
}

async function busy(button, fn) {
  button.disabled = true;
  try {
    await fn();
  } finally {
    button.disabled = false;
  }
}

// ------------------------------------------------------------------ actions

async function save(ev) {
  ev.preventDefault();
  clearMessages();
  const body = {
    name: ui.name.value.trim(),
    role: ui.role.value,
    active: ui.active.checked,
    alt_email: ui.alt.value.trim(),
  };
  await busy(ui.save, async () => {
    try {
      if (!user) {
        const email = ui.email.value.trim();
        if (!email) {
          ui.error.show('Enter the new user\'s email address.');
          ui.email.focus();
          return;
        }
        const pw = ui.initialPw.control.value;
        const added = await adminApi('POST', 'users', { email, ...body, ...(pw ? { password: pw } : {}) });
        user = { email: added?.email || email };
        say(`User ${user.email} added.`);
        onChanged();
        await reload();
        ui.name.focus();
      } else {
        await adminApi('PATCH', `users/${enc(user.email)}`, body);
        say(`Settings of ${user.email} saved.`);
        onChanged();
        await reload();
      }
    } catch (e) {
      if (e instanceof ApiError && e.code === 'password_policy') ui.error.show(errorText(e));
      else fail(e, ui.error);
    }
  });
}

async function setPassword(ev) {
  ev.preventDefault();
  clearMessages();
  const pw = ui.newPw.value;
  if (!pw) {
    ui.pwError.show('Enter the new password.');
    ui.newPw.focus();
    return;
  }
  await busy(ui.pwButton, async () => {
    try {
      await adminApi('PATCH', `users/${enc(user.email)}`, { password: pw });
      ui.newPw.value = '';
      say(`Password of ${user.email} set.`);
      onChanged();
      await reload();
    } catch (e) {
      // The server names the rule the password breaks.
      fail(e, ui.pwError);
      ui.newPw.focus();
    }
  });
}

async function toggleActive() {
  clearMessages();
  const active = !user.active;
  await busy(ui.toggle, async () => {
    try {
      await adminApi('PATCH', `users/${enc(user.email)}`, { active });
      say(`${user.email} ${active ? 'activated' : 'suspended'}.`);
      onChanged();
      await reload();
    } catch (e) {
      fail(e, ui.error);
    }
  });
}

async function unlock() {
  clearMessages();
  await busy(ui.unlock, async () => {
    try {
      await adminApi('POST', `users/${enc(user.email)}/unlock`);
      say(`${user.email} can sign in again: the failed sign-ins are forgotten.`);
    } catch (e) {
      fail(e, ui.error);
    }
  });
}

async function remove() {
  clearMessages();
  if (!window.confirm(`Delete the user ${user.email}? Their continuity mailbox is deleted with them.`)) return;
  try {
    await adminApi('DELETE', `users/${enc(user.email)}`);
    say(`User ${user.email} deleted.`);
    onChanged();
    ui.dialog.close();
  } catch (e) {
    fail(e, ui.error);
  }
}

async function addAlias(ev) {
  ev.preventDefault();
  clearMessages();
  const alias = ui.aliasInput.value.trim();
  if (!alias) {
    ui.aliasError.show('Enter the alias address.');
    ui.aliasInput.focus();
    return;
  }
  await busy(ui.aliasButton, async () => {
    try {
      await adminApi('POST', `users/${enc(user.email)}/aliases`, { alias });
      ui.aliasInput.value = '';
      say(`Alias ${alias} added to ${user.email}.`);
      onChanged();
      await reload();
      ui.aliasInput.focus();
    } catch (e) {
      fail(e, ui.aliasError);
    }
  });
}

async function removeAlias(alias) {
  clearMessages();
  try {
    await adminApi('DELETE', `users/${enc(user.email)}/aliases/${enc(alias)}`);
    say(`Alias ${alias} removed.`);
    onChanged();
    await reload();
    ui.aliasInput.focus();
  } catch (e) {
    fail(e, ui.aliasError);
  }
}

// ------------------------------------------------------------------ building

function build() {
  const titleId = uid('dlg-title');
  ui.title = h('h2', { id: titleId });
  ui.error = alertBox();
  ui.pwError = alertBox();
  ui.aliasError = alertBox();
  const emailF = field('Email address', { type: 'email', autocomplete: 'off', spellcheck: false });
  ui.email = emailF.control;
  ui.emailField = emailF;
  const nameF = field('Name', { type: 'text', autocomplete: 'off' });
  ui.name = nameF.control;
  ui.role = h('select');
  const roleF = field('Role', ui.role);
  const altF = field('Alternate address', { type: 'email', autocomplete: 'off', spellcheck: false },
    'Outside the domain: password-reset links and outage notices go there.');
  ui.alt = altF.control;
  const activeC = check('Activated (receives mail in continuity and can sign in)');
  ui.active = activeC.control;
  ui.initialPw = field('Password (optional)', { type: 'password', autocomplete: 'new-password' });
  ui.policyHints = [h('p', { class: 'hint policy' }), h('p', { class: 'hint policy' })];
  ui.save = h('button', { type: 'submit', class: 'primary' }, 'Save');
  ui.facts = h('dl', { class: 'facts' });
  ui.ldapNote = h('p', { class: 'hint' }, 'This user comes from the LDAP directory: the directory keeps the name, ' +
    'the aliases and the password; a sync overwrites changes made here.');

  const pwF = field('New password', { type: 'password', autocomplete: 'new-password' });
  ui.newPw = pwF.control;
  ui.pwButton = h('button', { type: 'submit' }, 'Set password');
  ui.toggle = h('button', { type: 'button', onclick: toggleActive }, 'Suspend');
  ui.unlock = h('button', { type: 'button', onclick: unlock }, 'Unlock');
  const del = h('button', { type: 'button', class: 'danger', onclick: remove }, 'Delete the user');

  const settingsForm = h('form', { class: 'settings', novalidate: true, onsubmit: save },
    emailF, nameF, roleF, altF, activeC, ui.initialPw, ui.policyHints[0], ui.error,
    h('div', { class: 'buttons' }, ui.save));
  const pwForm = h('form', { class: 'settings', novalidate: true, onsubmit: setPassword, 'aria-labelledby': 'pw-h' },
    h('h3', { id: 'pw-h' }, 'Password'), pwF, ui.policyHints[1], ui.pwError, h('div', { class: 'buttons' }, ui.pwButton));
  const more = h('div', { class: 'more' },
    h('h3', {}, 'Account'),
    h('div', { class: 'buttons' }, ui.toggle, ui.unlock, del));
  ui.editOnly = [ui.facts, pwForm, more];

  ui.aliasInput = h('input', { type: 'email', id: uid('alias'), autocomplete: 'off', spellcheck: false });
  ui.aliasButton = h('button', { type: 'submit' }, 'Add alias');
  ui.aliasList = h('ul', { class: 'alias-list', 'aria-label': 'Aliases' });
  ui.aliasNone = h('p', { class: 'info' }, 'No alias yet.');

  const tabSettings = h('button', { type: 'button', role: 'tab', id: uid('tab') }, 'User settings');
  ui.aliasTab = h('button', { type: 'button', role: 'tab', id: uid('tab') }, 'Aliases');
  const panelSettings = h('div', { role: 'tabpanel', 'aria-labelledby': tabSettings.id, class: 'tabpanel' },
    ui.ldapNote, ui.facts, settingsForm, pwForm, more);
  const panelAliases = h('div', { role: 'tabpanel', 'aria-labelledby': ui.aliasTab.id, class: 'tabpanel' },
    h('p', { class: 'hint' }, 'Other addresses of the same mailbox: mail to them reaches this user, also during an outage.'),
    ui.aliasList, ui.aliasNone,
    h('form', { class: 'inline-form', novalidate: true, onsubmit: addAlias },
      h('label', { for: ui.aliasInput.id }, 'New alias'), ui.aliasInput, ui.aliasButton),
    ui.aliasError);
  tabSettings.setAttribute('aria-controls', panelSettings.id = uid('panel'));
  ui.aliasTab.setAttribute('aria-controls', panelAliases.id = uid('panel'));
  ui.tabs = [[tabSettings, panelSettings], [ui.aliasTab, panelAliases]];
  ui.settingsTab = tabSettings;
  for (const [t] of ui.tabs) {
    t.addEventListener('click', () => selectTab(t));
    t.addEventListener('keydown', tabKeys);
  }

  ui.dialog = h('dialog', { class: 'user-dialog', 'aria-labelledby': titleId },
    h('div', { class: 'dialog-head' },
      ui.title,
      h('button', { type: 'button', onclick: () => ui.dialog.close() }, 'Close')),
    h('div', { role: 'tablist', class: 'tabs', 'aria-label': 'User' }, tabSettings, ui.aliasTab),
    panelSettings, panelAliases);
  ui.dialog.addEventListener('close', () => {
    opener?.focus?.();
    opener = null;
  });
  document.body.append(ui.dialog);
}

/** Opens the dialog for u (null: a new user); policy is GET policy's answer
 * (or null); changed() after anything is saved. */
export function openUser(u, { policy, changed, from, tab } = {}) {
  if (!ui.dialog) build();
  opener = from || document.activeElement;
  onChanged = changed || (() => {});
  const text = policy ? `Password policy: ${describePolicy(policy)}` : '';
  for (const p of ui.policyHints) {
    p.textContent = text;
    p.hidden = !text;
  }
  clearMessages();
  fill(u);
  selectTab(tab === 'aliases' && u ? ui.aliasTab : ui.settingsTab);
  ui.dialog.showModal();
  (u ? ui.name : ui.email).focus();
}

export function isUserOpen() {
  return Boolean(ui.dialog?.open);
}
