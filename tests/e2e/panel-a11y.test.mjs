// panel-a11y.test.mjs — the control panel's accessibility and phone-sized
// screens, in headless Chromium: axe-core (npm, injected into the page
// through the DevTools protocol, which the page's CSP does not govern) finds
// no serious or critical violation on the sign-in page, on every page of the
// panel (an admin's and an operator's, acme.test in outage so that the
// dashboard has its badges, events and chart) and in the user dialog's two
// tabs; moving between pages puts the focus on the page's heading; on a
// 390x844 screen the navigation folds behind "Menu", opens, takes the user
// to a page and folds again, and no page scrolls sideways. Run: node --test
// tests/e2e/ (LIFEBOAT_BUILD = the build directory).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';

import {
  Lifeboat, PASSWORD, Sink, launchChromium, makeMessage, smtpSend, waitFor,
} from './lifeboat.mjs';

const AXE = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const ANN = 'ann@acme.test';
const BOB = 'bob@acme.test';
const OLGA = 'olga@ops.test';
const ADMIN_PAGES = [
  ['Outage dashboard', 'Outage dashboard'],
  ['Continuity', 'Continuity service'],
  ['Users', 'Users'],
  ['Domains', 'Domains'],
  ['LDAP', 'LDAP / Active Directory'],
  ['Restrictions', 'Restrictions'],
  ['Queue', 'Queue'],
  ['Audit', 'Audit'],
  ['Legal holds', 'Legal holds'],
  ['Archive search', 'Archive search'],
];

describe('the control panel: accessibility and phone-sized screens', () => {
  let lb;
  let server;
  let chromium;
  let page;
  const pageErrors = [];

  before(async () => {
    server = await Sink.start();
    lb = await Lifeboat.create();
    await lb.start();
    lb.ctl(['customer', 'add', 'acme']);
    lb.ctl(['domain', 'add', 'acme.test', '--customer', 'acme', '--route', server.route]);
    lb.ctl(['user', 'add', ANN, '--password-stdin', '--name', 'Ann', '--role', 'admin', '--activate'], `${PASSWORD}\n`);
    lb.ctl(['user', 'add', BOB, '--password-stdin', '--name', 'Bob', '--activate'], `${PASSWORD}\n`);
    lb.ctl(['alias', 'add', BOB, 'robert@acme.test']);
    lb.ctl(['subscription', 'start', 'acme']);
    lb.ctl(['continuity', 'enable', 'acme.test', '--outgoing-to-own-server']);
    lb.ctl(['customer', 'add', 'ops']);
    lb.ctl(['domain', 'add', 'ops.test', '--customer', 'ops', '--route', server.route]);
    lb.ctl(['user', 'add', OLGA, '--password-stdin', '--role', 'operator', '--activate'], `${PASSWORD}\n`);
    // acme.test in outage: the dashboard shows a badge, an event and a diverted message.
    await server.mode('rcpt4xx');
    await smtpSend(lb.smtpPort, 'alice@example.org', [BOB], makeMessage({ to: BOB, subject: 'Hello', body: 'Hi.' }));
    await waitFor(() => lb.continuityState('acme.test') === 'outage', { what: 'acme.test in outage' });

    chromium = await launchChromium();
    chromium.context.on('page', (p) => {
      p.on('console', (msg) => {
        if (/Content Security Policy|Refused to/i.test(msg.text())) pageErrors.push(msg.text());
      });
      p.on('pageerror', (e) => pageErrors.push(String(e)));
    });
    page = await chromium.context.newPage();
    page.on('dialog', (d) => d.dismiss());
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

  /** axe-core on the page as it is: the serious and critical violations, described. */
  async function axeProblems(where) {
    if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(AXE);
    const violations = await page.evaluate(async () => {
      const r = await window.axe.run(document, { resultTypes: ['violations'] });
      return r.violations.map((v) => ({
        id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5),
      }));
    });
    return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => `${where}: ${v.id} (${v.impact}) ${v.help} at ${v.nodes.join(', ')}`);
  }

  const nav = () => page.getByRole('navigation', { name: 'Sections' });

  async function signInPanel(email) {
    await page.goto(`${lb.url}/admin/`);
    const form = page.locator('#panel-login-form');
    await form.getByLabel('Email address').fill(email);
    await form.getByLabel('Password').fill(PASSWORD);
    await form.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#panel-main').waitFor({ state: 'visible' });
  }

  /** Goes to a page and waits until it has loaded what it shows (no request in flight, no "…"). */
  async function visit(link, heading) {
    await nav().getByRole('link', { name: link, exact: true }).click();
    await page.getByRole('heading', { level: 1, name: heading, exact: true }).waitFor();
    await page.waitForLoadState('networkidle');
  }

  test('the sign-in page passes axe', async () => {
    await page.goto(`${lb.url}/admin/`);
    await page.locator('#panel-login-form').waitFor();
    assert.deepEqual(await axeProblems('sign-in'), []);
  });

  test('every page of an admin passes axe, and the focus goes to its heading', async () => {
    await signInPanel(ANN);
    await page.locator('#page-dashboard article[data-domain="acme.test"]').getByText('Outage').waitFor();
    await page.locator('#page-dashboard .timeline li').first().waitFor();
    const problems = [];
    for (const [link, heading] of ADMIN_PAGES) {
      await visit(link, heading);
      assert.equal(await page.evaluate(() => document.activeElement?.tagName), 'H1', `focus on ${heading}`);
      assert.equal(await page.evaluate(() => document.activeElement?.textContent), heading);
      assert.match(await page.title(), new RegExp(`^${link} — lifeboat control panel$`));
      problems.push(...await axeProblems(heading));
    }
    assert.deepEqual(problems, []);
  });

  test('the user dialog passes axe in both tabs; the tabs work with the arrow keys; Escape closes it', async () => {
    await visit('Users', 'Users');
    const opener = page.locator('#page-users').getByRole('button', { name: BOB });
    await opener.click();
    const dlg = page.getByRole('dialog');
    await dlg.getByRole('heading', { name: BOB }).waitFor();
    const problems = await axeProblems('user dialog, settings');
    const settings = dlg.getByRole('tab', { name: 'User settings' });
    await settings.focus();
    await page.keyboard.press('ArrowRight');
    const aliases = dlg.getByRole('tab', { name: 'Aliases' });
    assert.equal(await aliases.getAttribute('aria-selected'), 'true');
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Aliases');
    await dlg.getByText('robert@acme.test').waitFor();
    problems.push(...await axeProblems('user dialog, aliases'));
    assert.deepEqual(problems, []);
    await page.keyboard.press('Escape');
    await dlg.waitFor({ state: 'hidden' });
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), BOB, 'focus back on the opener');

    await page.getByRole('button', { name: 'Add user' }).click();
    await dlg.getByRole('heading', { name: 'Add a user' }).waitFor();
    assert.deepEqual(await axeProblems('add user dialog'), []);
    await page.keyboard.press('Escape');
    await dlg.waitFor({ state: 'hidden' });
  });

  test('an operator\'s pages pass axe too (the customers page, the customer selector)', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await signInPanel(OLGA);
    await page.locator('#customer-picker').waitFor({ state: 'visible' });
    await visit('Customers', 'Customers');
    await page.locator('#page-customers tr[data-customer="acme"]').waitFor();
    const problems = await axeProblems('customers');
    await visit('Outage dashboard', 'Outage dashboard');
    problems.push(...await axeProblems('operator dashboard'));
    await visit('Domains', 'Domains');
    problems.push(...await axeProblems('operator domains'));
    assert.deepEqual(problems, []);
  });

  test('on a phone-sized screen the navigation folds, opens, leads to a page, and no page scrolls sideways', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${lb.url}/admin/#/dashboard`);
    await page.locator('#page-dashboard article[data-domain="acme.test"]').waitFor();
    const menu = page.getByRole('button', { name: 'Menu' });
    assert.equal(await menu.isVisible(), true);
    assert.equal(await menu.getAttribute('aria-expanded'), 'false');
    assert.equal(await nav().isVisible(), false, 'the navigation is folded');
    const wide = [];
    for (const [link, heading] of [...ADMIN_PAGES, ['Customers', 'Customers']]) {
      await menu.click();
      assert.equal(await menu.getAttribute('aria-expanded'), 'true');
      // The first link has the focus, so a keyboard goes on from there.
      assert.equal(await page.evaluate(() => document.activeElement?.closest('nav')?.id), 'panel-nav');
      await nav().getByRole('link', { name: link, exact: true }).click();
      await page.getByRole('heading', { level: 1, name: heading, exact: true }).waitFor();
      assert.equal(await nav().isVisible(), false, `the navigation folds again after going to ${heading}`);
      assert.equal(await menu.getAttribute('aria-expanded'), 'false');
      await page.waitForLoadState('networkidle');
      const width = await page.evaluate(() => document.documentElement.scrollWidth);
      if (width > 390) wide.push(`${heading}: ${width}px`);
    }
    assert.deepEqual(wide, [], 'no page wider than the screen');
    // Escape folds the open navigation and gives the focus back to the button.
    await menu.click();
    await page.keyboard.press('Escape');
    assert.equal(await nav().isVisible(), false);
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'nav-toggle');
    // The dashboard's chart fits, and axe is as happy on the small screen.
    await menu.click();
    await nav().getByRole('link', { name: 'Outage dashboard', exact: true }).click();
    await page.locator('#page-dashboard svg.chart').waitFor();
    const box = await page.locator('#page-dashboard svg.chart').boundingBox();
    assert.ok(box && box.x >= 0 && box.x + box.width <= 390, `the chart fits (${JSON.stringify(box)})`);
    assert.deepEqual(await axeProblems('phone dashboard'), []);
    // A user's dialog fits the screen too.
    await menu.click();
    await nav().getByRole('link', { name: 'Users', exact: true }).click();
    await page.locator('#page-users').getByRole('button', { name: BOB }).click();
    const dlg = await page.getByRole('dialog').boundingBox();
    assert.ok(dlg.x >= 0 && dlg.x + dlg.width <= 390, `the dialog fits (${JSON.stringify(dlg)})`);
    await page.keyboard.press('Escape');
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  test('no CSP violation, no script error', () => {
    assert.deepEqual(pageErrors, []);
  });
});
