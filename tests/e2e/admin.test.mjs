// admin.test.mjs — issue 5's control panel (/admin/index.html) in headless
// Chromium: the audit trail, legal holds, and the archive search with its
// mbox export. acme.test's server is up; a message reaches bob and is
// archived. Bob (a user) releases it from his webmail Archive (re-delivered to
// the server) and is told "not allowed" in the panel. Ann (acme's admin)
// signs in to the panel, sees bob's release in the audit trail, finds and
// opens bob's message (recorded as a view), exports the search as mbox
// (recorded), places a hold on bob and one on the whole customer, releases
// bob's after a confirmation (recorded twice), and goes between the webmail
// and the panel without signing in again. Audit, Legal holds and Archive
// search are pages of the panel (#/audit ...), reached by its navigation. Run: node --test tests/e2e/
// (LIFEBOAT_BUILD = the build directory).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';

import { Lifeboat, PASSWORD, Sink, header, launchChromium, signIn, smtpSend, waitFor } from './lifeboat.mjs';

const BOB = 'bob@acme.test';
const ANN = 'ann@acme.test';
const INVOICE = [
  'From: Alice Example <alice@example.org>',
  `To: Bob <${BOB}>`,
  'Subject: Invoice 2026-117',
  `Date: ${new Date(Date.now() - 3 * 86400 * 1000).toUTCString().replace('GMT', '+0000')}`,
  'Message-ID: <invoice.117@example.org>',
  'MIME-Version: 1.0',
  'Content-Type: text/plain; charset=utf-8',
  '',
  'Please find the invoice for the gyroscope repair below.',
  '',
].join('\r\n');

describe('the control panel', () => {
  let lb;
  let server;
  let chromium;
  let page;
  let entryId;
  const dialogs = [];
  const foreign = [];
  const pageErrors = []; // CSP violations and uncaught exceptions

  before(async () => {
    server = await Sink.start();
    lb = await Lifeboat.create();
    await lb.start();
    lb.ctl(['customer', 'add', 'acme']);
    lb.ctl(['domain', 'add', 'acme.test', '--customer', 'acme', '--route', server.route]);
    lb.ctl(['user', 'add', BOB, '--password-stdin', '--name', 'Bob', '--activate'], `${PASSWORD}\n`);
    lb.ctl(['user', 'add', ANN, '--password-stdin', '--name', 'Ann', '--role', 'admin', '--activate'], `${PASSWORD}\n`);
    lb.ctl(['subscription', 'start', 'acme']);
    lb.ctl(['continuity', 'enable', 'acme.test']);
    await smtpSend(lb.smtpPort, 'sender@example.org', [BOB], INVOICE);
    const [e] = await waitFor(() => {
      const r = lb.ctlJson(['archive', 'search', '--user', BOB, 'gyroscope']);
      return r.length === 1 && r;
    }, { timeout: 30000, interval: 250, what: 'the invoice indexed in the archive' });
    entryId = e.id;
    await waitFor(async () => (await server.messages()).length === 1, { what: 'the invoice at the server' });

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
      await (page.dialogAnswer ? d.accept() : d.dismiss());
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

  /** The audit table as [actor, action, target, detail] rows, newest first. */
  async function auditRows() {
    return page.locator('#audit-rows tr').evaluateAll((trs) => trs.map((tr) => {
      const td = [...tr.querySelectorAll('td')].map((c) => c.textContent);
      return [td[2], td[3], td[4], td[5]];
    }));
  }

  /** Goes to a page of the panel by its link in the navigation. */
  async function goTo(name) {
    await page.getByRole('navigation', { name: 'Sections' }).getByRole('link', { name, exact: true }).click();
  }

  /** On the Audit page, refreshes the audit table until its newest rows start
   * with rows (each compared on as many columns as it gives); then back to the
   * page it came from. */
  async function expectAuditTop(rows, what) {
    const back = await page.evaluate(() => location.hash);
    await goTo('Audit');
    let got;
    await waitFor(async () => {
      await page.getByRole('button', { name: 'Refresh' }).click();
      got = (await auditRows()).slice(0, rows.length).map((r, i) => r.slice(0, rows[i]?.length));
      return JSON.stringify(got) === JSON.stringify(rows);
    }, { interval: 250, what: `${what} (got ${JSON.stringify(got)})` });
    if (back && back !== '#/audit') await page.evaluate((hash) => { location.hash = hash; }, back);
  }

  test('a user releases from the Archive (to the server) and is not allowed in the panel', async () => {
    await signIn(page, lb.url, BOB);
    assert.equal(await page.getByRole('link', { name: 'Control panel' }).count(), 0);
    await page.getByRole('button', { name: 'Archive' }).click();
    await page.locator('#archive-list button', { hasText: 'Invoice 2026-117' }).click();
    await page.getByRole('button', { name: 'Release to my mailbox' }).click();
    await page.locator('#archive-release-status').getByText('Released: re-delivered to your mail server').waitFor();
    await waitFor(async () => (await server.messages()).length === 2, { what: 'the released copy at the server' });
    const copies = (await server.messages()).filter((m) => header(m, 'Message-ID') === '<invoice.117@example.org>');
    assert.equal(copies.length, 2);
    assert.deepEqual(copies[1].rcpt_tos, [BOB]);

    // The same session in the panel: not for users, and the API agrees.
    await page.goto(lb.url + '/admin/index.html');
    await page.getByText('Not allowed: the control panel is for administrators and operators.').waitFor();
    assert.equal(await page.locator('#panel-main').isVisible(), false);
    assert.equal(await page.locator('#panel-login').isVisible(), false);
    const status = await page.evaluate(async () => (await fetch('/api/v1/admin/audit')).status);
    assert.equal(status, 403);
    // The webmail is one link away.
    await page.locator('#panel-denied').getByRole('link', { name: 'Back to your webmail' }).click();
    await page.locator('#mail-view').waitFor({ state: 'visible' });
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.locator('#login-form').waitFor({ state: 'visible' });
  });

  test('an admin signs in to the panel and sees the release in the audit trail', async () => {
    await page.goto(lb.url + '/admin/index.html');
    const form = page.locator('#panel-login-form');
    await form.getByLabel('Email address').fill(ANN);
    await form.getByLabel('Password').fill(PASSWORD);
    await form.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#panel-main').waitFor({ state: 'visible' });
    assert.match(await page.locator('#panel-me').textContent(), /ann@acme\.test \(admin\)/);
    await expectAuditTop([[BOB, 'archive.release', `archive:${entryId}`]], 'bob\'s release');
    assert.equal((await auditRows()).length, 1);
  });

  test('searching and opening bob\'s message is recorded as a view', async () => {
    await goTo('Archive search');
    const search = page.locator('#search-form');
    await search.getByLabel('Sender').fill('alice@example.org');
    await search.getByLabel('Words').fill('gyroscope');
    await search.getByRole('button', { name: 'Search' }).click();
    await waitFor(async () => (await page.locator('#search-info').textContent()) === '1–1 of 1', { what: 'one result' });
    await page.locator('#search-rows').getByRole('button', { name: 'Invoice 2026-117' }).click();
    await page.locator('#entry').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#entry-subject').textContent(), 'Invoice 2026-117');
    await page.locator('#entry-body').getByText('Please find the invoice for the gyroscope repair below.').waitFor();
    await expectAuditTop([[ANN, 'archive.view', `archive:${entryId}`, 'view']], 'the view on top');
    await page.locator('#search').waitFor({ state: 'visible' });
    await page.keyboard.press('Escape');
    await page.locator('#entry').waitFor({ state: 'hidden' });
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Invoice 2026-117');
  });

  test('"Export as mbox" downloads the search as mbox, recorded', async () => {
    const link = page.getByRole('link', { name: 'Export as mbox' });
    assert.match(await link.getAttribute('href'), /^\/api\/v1\/archive\/export\?q=gyroscope&from=alice%40example\.org$/);
    const [download] = await Promise.all([page.waitForEvent('download'), link.click()]);
    assert.match(download.suggestedFilename(), /^archive-\d{8}\.mbox$/);
    const mbox = fs.readFileSync(await download.path(), 'utf8');
    assert.match(mbox, /^From sender@example\.org /);
    assert.equal((mbox.match(/^From /gm) || []).length, 1);
    assert.match(mbox, /\nSubject: Invoice 2026-117\n/);
    await expectAuditTop([[ANN, 'archive.export', 'customer:acme']], 'the export on top');
    assert.match((await auditRows())[0][3], /gyroscope/);
  });

  test('legal holds: place on a user and on the customer, release one after confirming', async () => {
    await goTo('Legal holds');
    await page.locator('#holds-info').getByText('No legal hold is in place.').waitFor();
    await page.getByLabel('Hold a user\'s mail').fill(BOB);
    await page.locator('#hold-user-form').getByRole('button', { name: 'Place the hold' }).click();
    await page.locator('#hold-status').getByText(`Hold placed on ${BOB}.`).waitFor();
    // An admin's customer is known from the rows they see.
    assert.equal(await page.getByLabel('Hold the whole customer\'s mail').inputValue(), 'acme');
    await page.locator('#hold-customer-form').getByRole('button', { name: 'Place the hold' }).click();
    await page.locator('#hold-status').getByText('Hold placed on the whole customer acme.').waitFor();
    await waitFor(async () => (await page.locator('#holds-rows tr').count()) === 2, { what: 'two holds listed' });
    // The same again: the server says it is in place.
    await page.locator('#hold-customer-form').getByRole('button', { name: 'Place the hold' }).click();
    await page.locator('#holds-error').getByText('that hold is in place already').waitFor();
    assert.equal(lb.ctlJson(['archive', 'holds']).length, 2);

    // Release bob's: "no" keeps it, "yes" releases it.
    const release = page.getByRole('button', { name: `Release the hold on ${BOB}` });
    page.dialogAnswer = false;
    await release.click();
    await waitFor(() => dialogs.length === 1, { what: 'the confirmation' });
    assert.match(dialogs[0], /^Release the legal hold on bob@acme\.test\?/);
    assert.equal(await page.locator('#holds-rows tr').count(), 2);
    page.dialogAnswer = true;
    await release.click();
    await page.locator('#hold-status').getByText(`Hold on ${BOB} released.`).waitFor();
    await waitFor(async () => (await page.locator('#holds-rows tr').count()) === 1, { what: 'one hold left' });
    assert.match(await page.locator('#holds-rows tr').textContent(), /whole customer/);

    await expectAuditTop([
      [ANN, 'archive.hold', `user:${BOB}`, 'released'],
      [ANN, 'archive.hold', 'customer:acme', 'placed'],
      [ANN, 'archive.hold', `user:${BOB}`, 'placed'],
    ], 'the hold rows, newest first');
    const actions = (await auditRows()).map((r) => r[1]);
    assert.deepEqual(actions, ['archive.hold', 'archive.hold', 'archive.hold', 'archive.export', 'archive.view',
      'archive.release']);
  });

  test('the admin goes between webmail and panel without signing in again', async () => {
    await page.getByRole('link', { name: 'Webmail' }).click();
    await page.locator('#mail-view').waitFor({ state: 'visible' });
    await page.getByRole('link', { name: 'Control panel' }).click();
    await page.locator('#panel-main').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#panel-login').isVisible(), false);
  });

  test('on a phone-sized screen the panel fits the width', async () => {
    await page.setViewportSize({ width: 390, height: 800 });
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 390, `no sideways scrolling of the page (${width})`);
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  test('no CSP violation, no script error, no request leaving the server', () => {
    assert.deepEqual(pageErrors, []);
    assert.deepEqual(foreign, []);
  });
});
