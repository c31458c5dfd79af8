// panel.test.mjs — issue 11's control panel (/admin/) in headless Chromium,
// as a new administrator of acme would use it: Ann (acme's admin) signs in
// and lands on the outage dashboard; adds a user and an alias (the Aliases
// tab); sets his password (a weak one is refused, the failing rule named);
// switches continuity on with "send outgoing e-mails to own mail server";
// acme's server (the sink) then answers 4xx and the dashboard shows the
// domain in outage, the timeline entry and the diverted message in the
// chart within a few seconds, while the queue page shows the mail that
// waits (for an unknown address) with the server's last reply and holds,
// releases and deletes it; the server takes mail again and the recovery
// shows too. Then the users list's search and paging after a CSV import
// (the per-line report), suspend / unlock / delete, the password policy, a
// domain's routes and DKIM key, LDAP settings (the bind password never comes
// back), and an operator's customers, subscriptions, customer selector and
// a new domain. Every step checks the result with lifeboatctl, not only on
// the screen. Run: node --test tests/e2e/ (LIFEBOAT_BUILD = the build directory).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  Lifeboat, PASSWORD, Sink, launchChromium, makeMessage, smtpSend, waitFor,
} from './lifeboat.mjs';

const ANN = 'ann@acme.test';
const DAVE = 'dave@acme.test';
const OLGA = 'olga@ops.test';
const SHOWN_WITHIN = 15000; // "within a few seconds": the dashboard refreshes every 5 s

describe('the control panel of issue 11', () => {
  let lb;
  let server;
  let chromium;
  let page;
  const foreign = [];
  const pageErrors = []; // CSP violations and uncaught exceptions
  const dialogs = [];

  before(async () => {
    server = await Sink.start();
    lb = await Lifeboat.create();
    await lb.start();
    lb.ctl(['customer', 'add', 'acme']);
    lb.ctl(['domain', 'add', 'acme.test', '--customer', 'acme', '--route', server.route]);
    lb.ctl(['user', 'add', ANN, '--password-stdin', '--name', 'Ann', '--role', 'admin', '--activate'], `${PASSWORD}\n`);
    lb.ctl(['subscription', 'start', 'acme']);
    lb.ctl(['customer', 'add', 'ops']);
    lb.ctl(['domain', 'add', 'ops.test', '--customer', 'ops', '--route', server.route]);
    lb.ctl(['user', 'add', OLGA, '--password-stdin', '--name', 'Olga', '--role', 'operator', '--activate'],
      `${PASSWORD}\n`);

    chromium = await launchChromium();
    chromium.context.on('request', (req) => {
      if (!req.url().startsWith(lb.url) && !req.url().startsWith('about:')) foreign.push(req.url());
    });
    chromium.context.on('page', (p) => {
      p.on('console', (msg) => {
        if (/Content Security Policy|Refused to/i.test(msg.text())) pageErrors.push(msg.text());
      });
      p.on('pageerror', (e) => pageErrors.push(String(e)));
    });
    page = await chromium.context.newPage();
    page.on('dialog', async (d) => {
      dialogs.push(d.message());
      await d.accept();
    });
  });

  after(async () => {
    if (chromium) await chromium.close();
    await server?.stop();
    if (lb) {
      const rc = await lb.stop();
      const findings = lb.sanitizerFindings();
      const log = lb.log();
      lb.cleanup();
      assert.equal(rc, 0, `lifeboatd exited with ${rc} after SIGTERM:\n${log.slice(-4000)}`);
      assert.deepEqual(findings, [], `sanitizer report in lifeboatd's output:\n${log.slice(-6000)}`);
    }
  });

  const nav = () => page.getByRole('navigation', { name: 'Sections' });
  /** Follows the navigation's link and waits for the page's heading. */
  async function goTo(name, heading = name) {
    // A dialog left open by a step that failed would keep the page modal.
    if (await page.getByRole('dialog').isVisible()) await page.keyboard.press('Escape');
    await nav().getByRole('link', { name, exact: true }).click();
    await page.getByRole('heading', { level: 1, name: heading, exact: true }).waitFor();
  }
  const status = () => page.locator('#panel-status');
  async function said(text) {
    await status().getByText(text).waitFor();
  }
  /** Clicks and waits for the status line to say text (emptied first: the
   * same sentence may still be there from the step before). */
  async function clickSaid(locator, text) {
    await page.evaluate(() => { document.getElementById('panel-status').textContent = ''; });
    await locator.click();
    await said(text);
  }
  const dialog = () => page.getByRole('dialog');
  const tile = (domain) => page.locator(`#page-dashboard article[data-domain="${domain}"]`);
  const total = (series) => page.locator(`#page-dashboard .legend li[data-series="${series}"] .total`);

  async function signInPanel(email) {
    await page.goto(`${lb.url}/admin/`);
    const form = page.locator('#panel-login-form');
    await form.getByLabel('Email address').fill(email);
    await form.getByLabel('Password').fill(PASSWORD);
    await form.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#panel-main').waitFor({ state: 'visible' });
  }

  async function signOut() {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.locator('#panel-login').waitFor({ state: 'visible' });
  }

  /** The password works: a login through the API answers 200. */
  async function canLogIn(email, password) {
    const r = await fetch(`${lb.url}/api/v1/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ email, password }),
    });
    return r.status === 200;
  }

  const userRow = (email) => lb.ctlJson(['user', 'list', '--domain', email.split('@')[1]]).find((u) => u.email === email);

  test('an administrator signs in and lands on the outage dashboard', async () => {
    await signInPanel(ANN);
    assert.match(page.url(), /\/admin\/(#\/dashboard)?$/);
    await page.getByRole('heading', { level: 1, name: 'Outage dashboard' }).waitFor();
    await tile('acme.test').getByText('Normal').waitFor();
    assert.equal(await tile('ops.test').count(), 0, 'another customer\'s domain is not shown');
    // An admin has no customers page and no customer selector.
    assert.equal(await nav().getByRole('link', { name: 'Customers' }).count(), 0);
    assert.equal(await page.locator('#customer-picker').isVisible(), false);
    assert.equal(await nav().getByRole('link', { name: 'Outage dashboard' }).getAttribute('aria-current'), 'page');
  });

  test('adds a user, then an alias in the Aliases tab', async () => {
    await goTo('Users');
    await page.getByRole('button', { name: 'Add user' }).click();
    const dlg = dialog();
    await dlg.getByRole('heading', { name: 'Add a user' }).waitFor();
    // The policy is shown where a password is typed.
    await dlg.getByText('Password policy: At least 8 characters.').filter({ visible: true }).waitFor();
    await dlg.getByLabel('Email address').fill(DAVE);
    await dlg.getByLabel('Name').fill('Dave Smith');
    assert.equal(await dlg.getByLabel(/^Activated/).isChecked(), true);
    await clickSaid(dlg.getByRole('button', { name: 'Add the user' }), `User ${DAVE} added.`);
    await dlg.getByRole('heading', { name: DAVE }).waitFor();
    const u = userRow(DAVE);
    assert.equal(u.name, 'Dave Smith');
    assert.equal(u.active, true);
    assert.equal(u.password, false);

    await dlg.getByRole('tab', { name: 'Aliases' }).click();
    assert.equal(await dlg.getByRole('tab', { name: 'Aliases' }).getAttribute('aria-selected'), 'true');
    await dlg.getByText('No alias yet.').waitFor();
    await dlg.getByLabel('New alias').fill('d.smith@acme.test');
    await dlg.getByRole('button', { name: 'Add alias' }).click();
    await dlg.getByRole('list', { name: 'Aliases' }).getByText('d.smith@acme.test').waitFor();
    assert.deepEqual(lb.ctlJson(['alias', 'list', DAVE]).map((a) => a.alias), ['d.smith@acme.test']);
    // An alias of another customer's domain is refused, with the server's reason.
    await dlg.getByLabel('New alias').fill('dave@ops.test');
    await dlg.getByRole('button', { name: 'Add alias' }).click();
    await dlg.getByRole('alert').filter({ hasText: /\S/ }).waitFor();
    assert.deepEqual(lb.ctlJson(['alias', 'list', DAVE]).map((a) => a.alias), ['d.smith@acme.test']);
  });

  test('sets a password: a weak one is refused with the rule named', async () => {
    const dlg = dialog();
    await dlg.getByRole('tab', { name: 'User settings' }).click();
    await dlg.getByLabel('New password').fill('short');
    await dlg.getByRole('button', { name: 'Set password' }).click();
    await dlg.getByRole('alert').getByText('password must be at least 8 characters').waitFor();
    assert.equal(userRow(DAVE).password, false);
    await dlg.getByLabel('New password').fill(PASSWORD);
    await clickSaid(dlg.getByRole('button', { name: 'Set password' }), `Password of ${DAVE} set.`);
    assert.equal(await dlg.getByRole('alert').filter({ hasText: /\S/ }).count(), 0);
    assert.equal(userRow(DAVE).password, true);
    assert.equal(await canLogIn(DAVE, PASSWORD), true);
    // Closing the dialog gives the focus back to the list.
    await dlg.getByRole('button', { name: 'Close' }).click();
    await dlg.waitFor({ state: 'hidden' });
    await page.locator('#page-users').getByRole('button', { name: DAVE }).waitFor();
  });

  test('enables continuity for all users with the outgoing option', async () => {
    await goTo('Continuity', 'Continuity service');
    // The subscription it depends on (acme's was started).
    await page.locator('#page-continuity dd').getByText(/^Active/).waitFor();
    const on = page.getByLabel('Enable the continuity service for all users of this domain');
    const outgoing = page.getByLabel('Send outgoing e-mails to own mail server during server failure');
    assert.equal(await on.isChecked(), false);
    assert.equal(await outgoing.isDisabled(), true);
    await on.check();
    await outgoing.check();
    await clickSaid(page.getByRole('button', { name: 'Save' }), 'Continuity is on for every user of acme.test');
    const [row] = lb.ctlJson(['continuity', 'status', 'acme.test']);
    assert.equal(row.continuity, true);
    assert.equal(row.outgoing_to_own_server, true);
    // Readiness: Ann and Dave have passwords but never signed in to the webmail.
    await page.locator('#page-continuity').getByText(/of 2 users ready for an outage/).waitFor();
  });

  test('the server answers 4xx: the dashboard shows the outage, its event and the diverted message', async (t) => {
    await goTo('Outage dashboard');
    await tile('acme.test').getByText('Normal').waitFor();
    assert.equal(await total('diverted').textContent(), '0');
    await server.mode('rcpt4xx');
    const sent = Date.now();
    await smtpSend(lb.smtpPort, 'alice@example.org', [DAVE],
      makeMessage({ to: DAVE, subject: 'During the outage', body: 'Kept for Dave.' }));
    await tile('acme.test').getByText('Outage').waitFor({ timeout: SHOWN_WITHIN });
    t.diagnostic(`outage on the dashboard ${Date.now() - sent} ms after the message was sent`);
    await page.locator('#page-dashboard .timeline li', { hasText: 'acme.test' })
      .filter({ hasText: 'normal → outage' }).first().waitFor({ timeout: SHOWN_WITHIN });
    await waitFor(async () => Number(await total('diverted').textContent()) >= 1,
      { timeout: SHOWN_WITHIN, what: 'the diverted message in the chart' });
    t.diagnostic(`diverted message in the chart ${Date.now() - sent} ms after it was sent`);
    // The diverted line leaves the zero line (a step up and down).
    const d = await page.locator('#page-dashboard svg.chart path[data-series="diverted"]').getAttribute('d');
    assert.match(d, /V/);
    // The tile counts the message held in Dave's continuity mailbox; the status line said the change.
    await waitFor(async () => (await tile('acme.test').textContent()).match(/In continuity mailboxes\s*1/),
      { timeout: SHOWN_WITHIN, what: 'one message held' });
    assert.equal(lb.mailbox(DAVE).length, 1);
    assert.match(await tile('acme.test').locator('.since').textContent(), /Since/);
  });

  test('the queue shows waiting mail with the last reply; hold, release, delete', async () => {
    // Mail for an unknown address is not diverted: it waits in the queue.
    const qid = await smtpSend(lb.smtpPort, 'alice@example.org', ['nobody@acme.test'],
      makeMessage({ to: 'nobody@acme.test', subject: 'For nobody', body: 'Waits.' }));
    await waitFor(() => lb.ctlJson(['queue', 'list']).some((m) => m.id === qid && m.last_reply),
      { what: 'a delivery attempt with a reply' });
    await goTo('Queue');
    const row = page.locator(`#page-queue tr[data-id="${qid}"]`);
    await row.waitFor();
    assert.match(await row.textContent(), /nobody@acme\.test/);
    assert.match(await row.locator('.reply').textContent(), /451 4\.3\.0/);
    await clickSaid(row.getByRole('button', { name: `Hold message ${qid}` }), `Message ${qid} held.`);
    await row.getByText('Held').waitFor();
    assert.equal(lb.ctlJson(['queue', 'list']).find((m) => m.id === qid).held, true);
    await clickSaid(row.getByRole('button', { name: `Release message ${qid}` }), `Message ${qid} released.`);
    await page.locator('#page-queue').getByLabel('Domain').selectOption('acme.test');
    await row.waitFor();
    await clickSaid(page.getByRole('button', { name: 'Flush' }), 'Delivery of the mail for acme.test is being tried now.');
    await clickSaid(row.getByRole('button', { name: `Delete message ${qid}` }), `Message ${qid} deleted.`);
    assert.match(dialogs.at(-1), new RegExp(`^Delete message ${qid}`));
    await row.waitFor({ state: 'detached' });
    assert.equal(lb.ctlJson(['queue', 'list']).some((m) => m.id === qid), false);
  });

  test('the server takes mail again: the recovery shows on the dashboard', async (t) => {
    await goTo('Outage dashboard');
    await server.mode('accept');
    const back = Date.now();
    await tile('acme.test').getByText('Normal').waitFor({ timeout: 30000 });
    t.diagnostic(`normal again on the dashboard ${Date.now() - back} ms after the server took mail again`);
    await page.locator('#page-dashboard .timeline li', { hasText: 'acme.test' })
      .filter({ hasText: /→ normal/ }).first().waitFor({ timeout: SHOWN_WITHIN });
    await waitFor(async () => Number(await total('redelivered').textContent()) >= 1,
      { timeout: SHOWN_WITHIN, what: 'the re-delivered message in the chart' });
    await waitFor(async () => (await server.messages()).some((m) => m.headers.subject?.[0] === 'During the outage'),
      { what: 'the held message at the server' });
    // The newest event is on top.
    assert.match(await page.locator('#page-dashboard .timeline li').first().textContent(), /→ normal/);
  });

  test('CSV import: a report line by line, then search and paging of the list', async () => {
    await goTo('Users');
    const lines = ['email,name,alt_email,aliases,role,active,password'];
    for (let i = 1; i <= 26; i += 1) lines.push(`user${String(i).padStart(2, '0')}@acme.test,User ${i},,,user,yes,`);
    lines.push('not an address,Bad,,,user,yes,'); // line 28
    lines.push('eve@acme.test,Eve,,,user,yes,weak'); // line 29: the policy refuses the password
    lines.push(`${DAVE},Dave S. Smith,,,user,yes,`); // line 30: an update, not a duplicate
    const card = page.locator('#page-users section.card',
      { has: page.getByRole('heading', { name: 'Import users from a CSV file' }) });
    await card.getByLabel('Import into the domain').selectOption('acme.test');
    await card.getByLabel('or the lines themselves').fill(lines.join('\n'));
    await card.getByRole('button', { name: 'Import' }).click();
    await card.getByText('26 users imported, 1 updated, 2 lines refused (below).').waitFor();
    const report = await card.locator('tbody tr').evaluateAll((trs) => trs.map((tr) => tr.cells[0].textContent));
    assert.deepEqual(report, ['28', '29']);
    assert.match(await card.locator('tbody tr').nth(1).textContent(), /at least 8 characters/);
    assert.equal(userRow(DAVE).name, 'Dave S. Smith');
    assert.equal(userRow('eve@acme.test'), undefined);

    // 28 users: ann, dave and 26 imported; 25 a page.
    const info = page.locator('#page-users .card .info').first();
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await waitFor(async () => (await info.textContent()) === '1–25 of 28', { what: 'the first page' });
    await page.getByRole('button', { name: 'Next' }).click();
    await waitFor(async () => (await info.textContent()) === '26–28 of 28', { what: 'the second page' });
    assert.equal(await page.getByRole('button', { name: 'Next' }).isDisabled(), true);
    await page.getByLabel('Search users').fill('user07');
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await waitFor(async () => (await info.textContent()) === '1–1 of 1', { what: 'one match' });
    await page.locator('#page-users').getByRole('button', { name: 'user07@acme.test' }).waitFor();
  });

  test('suspend, activate, unlock and delete a user', async () => {
    // The import made user07; made here when that step failed, so that this one stands alone.
    if (!userRow('user07@acme.test')) lb.ctl(['user', 'add', 'user07@acme.test', '--name', 'User 7', '--activate']);
    await goTo('Users');
    await page.getByLabel('Search users').fill('user07');
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await page.locator('#page-users').getByRole('button', { name: 'user07@acme.test' }).click();
    const dlg = dialog();
    await dlg.getByRole('heading', { name: 'user07@acme.test' }).waitFor();
    await clickSaid(dlg.getByRole('button', { name: 'Suspend' }), 'user07@acme.test suspended.');
    assert.equal(userRow('user07@acme.test').active, false);
    await clickSaid(dlg.getByRole('button', { name: 'Activate' }), 'user07@acme.test activated.');
    assert.equal(userRow('user07@acme.test').active, true);
    await clickSaid(dlg.getByRole('button', { name: 'Unlock' }), 'user07@acme.test can sign in again');
    await clickSaid(dlg.getByRole('button', { name: 'Delete the user' }), 'User user07@acme.test deleted.');
    assert.match(dialogs.at(-1), /^Delete the user user07@acme\.test\?/);
    await dlg.waitFor({ state: 'hidden' });
    assert.equal(userRow('user07@acme.test'), undefined);
  });

  test('restrictions: a stricter password policy applies at once', async () => {
    await goTo('Restrictions');
    await page.getByText('Now: At least 8 characters').waitFor();
    await page.getByLabel('Minimum length').fill('12');
    await page.getByLabel('At least one digit').check();
    await clickSaid(page.getByRole('button', { name: 'Save' }),
      'Password policy saved: At least 12 characters, with a digit.');
    const p = lb.ctlJson(['policy', 'show', 'acme']);
    assert.equal(p.min_length, 12);
    assert.equal(p.digit, true);
    // The user dialog shows it and the server enforces it.
    await goTo('Users');
    await page.getByLabel('Search users').fill('dave');
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await page.locator('#page-users').getByRole('button', { name: DAVE }).click();
    const dlg = dialog();
    await dlg.getByText('Password policy: At least 12 characters, with a digit.').filter({ visible: true }).waitFor();
    await dlg.getByLabel('New password').fill('longbutnodigits');
    await dlg.getByRole('button', { name: 'Set password' }).click();
    await dlg.getByRole('alert').getByText('password must contain a digit').waitFor();
    await dlg.getByRole('button', { name: 'Close' }).click();
  });

  test('domains: routes in order, recipient check, outbound addresses, webhook and a DKIM key', async () => {
    await goTo('Domains');
    const route1 = page.getByLabel('Route 1', { exact: true });
    assert.equal(await route1.inputValue(), server.route);
    await page.getByRole('button', { name: 'Add a route' }).click();
    await page.getByLabel('Route 2', { exact: true }).fill('backup.acme.test:2525');
    await page.getByRole('button', { name: 'Up: move route 2 up' }).click();
    assert.equal(await page.getByLabel('Route 1', { exact: true }).inputValue(), 'backup.acme.test:2525');
    await page.getByLabel(/^Check recipients/).check();
    await page.getByLabel('Outbound addresses').fill('192.0.2.0/24\n198.51.100.7');
    await page.getByLabel('Webhooks').fill('https://hooks.example.net/lifeboat');
    await page.getByLabel('DKIM selector').fill('lb2026');
    const dir = fs.mkdtempSync(path.join(lb.dir, 'dkim-'));
    const keyFile = path.join(dir, 'key.pem');
    const gen = spawnSync('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', keyFile]);
    assert.equal(gen.status, 0, String(gen.stderr));
    await page.getByLabel('DKIM private key (PEM)').fill(fs.readFileSync(keyFile, 'utf8'));
    await clickSaid(page.getByRole('button', { name: 'Save', exact: true }), 'Settings of acme.test saved.');
    const d = lb.ctlJson(['domain', 'list']).find((x) => x.name === 'acme.test');
    assert.deepEqual(d.routes, ['backup.acme.test:2525', server.route]);
    assert.equal(d.recipient_check, true);
    assert.deepEqual(d.outbound_from, ['192.0.2.0/24', '198.51.100.7']);
    assert.equal(d.dkim_selector, 'lb2026');
    assert.equal(d.webhook, 'https://hooks.example.net/lifeboat');
    assert.ok(d.dkim_key, 'a DKIM key is installed');
    // The key is not shown again; the page says one is installed.
    assert.equal(await page.getByLabel('DKIM private key (PEM)').inputValue(), '');
    await page.getByText('A private key is installed').waitFor();
    // Back to one route, the sink's, for the rest of the suite.
    await page.getByRole('button', { name: 'Remove route 1' }).click();
    await clickSaid(page.getByRole('button', { name: 'Save', exact: true }), 'Settings of acme.test saved.');
    assert.deepEqual(lb.ctlJson(['domain', 'list']).find((x) => x.name === 'acme.test').routes, [server.route]);
  });

  test('LDAP: settings saved, the bind password never shown, test and sync report a dead directory', async () => {
    await goTo('LDAP', 'LDAP / Active Directory');
    await page.getByLabel('Directory URL').fill('ldap://127.0.0.1:9');
    await page.getByLabel('Bind DN').fill('cn=lifeboat,dc=acme,dc=test');
    await page.getByLabel('Bind password').fill('s3cret-bind');
    await page.getByLabel('Base DN').fill('dc=acme,dc=test');
    await page.getByLabel('Sync every').fill('3h');
    await clickSaid(page.getByRole('button', { name: 'Save' }), 'LDAP settings of acme.test saved.');
    assert.equal(await page.getByLabel('Bind password').inputValue(), '');
    assert.equal(await page.getByLabel('Directory URL').inputValue(), 'ldap://127.0.0.1:9');
    const raw = await page.evaluate(async () => (await fetch('/api/v1/admin/domains/acme.test/ldap')).text());
    assert.doesNotMatch(raw, /s3cret-bind/);
    await page.getByRole('button', { name: 'Test connection' }).click();
    await page.locator('#page-ldap').getByRole('alert').filter({ hasText: /\S/ }).waitFor();
    await page.getByRole('button', { name: 'Sync now' }).click();
    await waitFor(async () => (await page.locator('#page-ldap').textContent()).match(/problem|cannot|refused|unreachable|failed/i),
      { what: 'the failed sync reported' });
  });

  test('an operator: customers and subscriptions, the customer selector, a new domain', async () => {
    if (await page.getByRole('dialog').isVisible()) await page.keyboard.press('Escape');
    await signOut();
    await signInPanel(OLGA);
    assert.match(await page.locator('#panel-me').textContent(), /olga@ops\.test \(operator\)/);
    await page.locator('#customer-picker').waitFor({ state: 'visible' });

    await goTo('Customers');
    const table = page.locator('#page-customers tbody');
    await table.locator('tr[data-customer="acme"]').getByText('Active').waitFor();
    await page.locator('#page-customers').getByLabel('Name', { exact: true }).fill('globex');
    await clickSaid(page.getByRole('button', { name: 'Add the customer' }), 'Customer globex added.');
    const globex = table.locator('tr[data-customer="globex"]');
    await globex.getByText('None').waitFor();
    await globex.getByLabel('Months of subscription for globex').fill('24');
    await clickSaid(globex.getByRole('button', { name: 'Subscribe globex for these months' }),
      'Subscription of globex: 24 months from now.');
    await globex.getByText('Active').waitFor();
    assert.equal(lb.ctlJson(['customer', 'list']).find((c) => c.name === 'globex').subscription, 'active');
    // The selector lists the new customer.
    await page.locator('#customer-select option[value="globex"]').waitFor({ state: 'attached' });

    // A domain for globex.
    await goTo('Domains');
    const add = page.locator('section[aria-labelledby="dom-add"]');
    await add.getByLabel('Domain', { exact: true }).fill('globex.test');
    await add.getByLabel('Customer').selectOption('globex');
    await add.getByLabel('Routes').fill(server.route);
    await clickSaid(add.getByRole('button', { name: 'Add the domain' }), 'Domain globex.test added to globex.');
    assert.equal(lb.ctlJson(['domain', 'list']).find((d) => d.name === 'globex.test').customer, 'globex');

    // All customers' domains on the dashboard; narrowed to acme, only acme's users and domains.
    await goTo('Outage dashboard');
    await tile('acme.test').waitFor();
    await tile('ops.test').waitFor();
    await page.locator('#customer-select').selectOption('acme');
    await goTo('Users');
    await page.locator('#page-users').getByRole('button', { name: DAVE }).waitFor();
    assert.equal(await page.locator('#page-users').getByRole('button', { name: OLGA }).count(), 0);
    await goTo('Outage dashboard');
    await tile('acme.test').waitFor();
    assert.equal(await tile('globex.test').count(), 0);

    // A customer with a domain is not deleted; the server's reason is shown.
    await page.locator('#customer-select').selectOption('');
    await goTo('Customers');
    await globex.getByRole('button', { name: 'Delete the customer globex' }).click();
    await page.locator('#page-customers').getByRole('alert').filter({ hasText: /\S/ }).waitFor();
    assert.ok(lb.ctlJson(['customer', 'list']).some((c) => c.name === 'globex'));
  });

  test('no CSP violation, no script error, no request leaving the server', () => {
    assert.deepEqual(pageErrors, []);
    assert.deepEqual(foreign, []);
  });
});
