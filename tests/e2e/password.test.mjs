// password.test.mjs — the webmail's password pages in headless Chromium:
// the "Change password" dialog (its own checks, the customer's policy in the
// server's words on 400, a wrong current password on 403, success), and the
// way back for a user who forgot it: "Forgot password?" on the sign-in page
// (the same answer for known and unknown addresses), the reset mail at the
// user's alternate address (read from the "internet" sink), the link's
// "Choose a new password" form (#reset=TOKEN), and a used link refused.
// Run: node --test tests/e2e/ (LIFEBOAT_BUILD = the build directory).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';

import { Lifeboat, PASSWORD, Sink, freePort, header, launchChromium, signIn, waitFor } from './lifeboat.mjs';

const BOB = 'bob@acme.test';
const BOB_HOME = 'bob.home@example.net';
const CHANGED = 'a new password 4 bob';
const RESET = 'reset password 5 for bob';
const NEUTRAL = 'If the address is known, a reset link was sent to its alternate address.';

describe('password pages', () => {
  let lb;
  let internet;
  let chromium;
  const foreign = [];

  before(async () => {
    internet = await Sink.start();
    lb = await Lifeboat.create({ outbound_relay: internet.route });
    fs.appendFileSync(lb.conf, `web_url = ${lb.url}/\n`); // the link in the reset mail
    await lb.start();
    lb.ctl(['customer', 'add', 'acme']);
    lb.ctl(['policy', 'set', 'acme', '--min-length', '12', '--digit']);
    lb.ctl(['domain', 'add', 'acme.test', '--customer', 'acme', '--route', `127.0.0.1:${await freePort()}`]);
    lb.ctl(['user', 'add', BOB, '--password-stdin', '--name', 'Bob', '--activate'], PASSWORD + '\n');
    lb.ctl(['user', 'set', BOB, '--alt-email', BOB_HOME]);
    chromium = await launchChromium();
    chromium.context.on('request', (req) => {
      if (!req.url().startsWith(lb.url) && !req.url().startsWith('about:')) foreign.push(req.url());
    });
  });

  after(async () => {
    if (chromium) await chromium.close();
    await internet?.stop();
    if (lb) {
      const rc = await lb.stop();
      const findings = lb.sanitizerFindings();
      const log = lb.log();
      lb.cleanup();
      assert.equal(rc, 0, `lifeboatd exited with ${rc} after SIGTERM:\n${log.slice(-4000)}`);
      assert.deepEqual(findings, [], `sanitizer report in lifeboatd's output:\n${log.slice(-6000)}`);
    }
  });

  /** A page of its own, signed out (no CSRF token in its session storage). */
  async function freshPage() {
    const page = await chromium.context.newPage();
    await page.goto(lb.url + '/');
    await page.locator('#login-form').waitFor({ state: 'visible' });
    return page;
  }

  async function signInFails(page, password) {
    const form = page.locator('#login-form');
    await form.getByLabel('Email address').fill(BOB);
    await form.getByLabel('Password').fill(password);
    await form.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#login-error').getByText('Wrong email address or password.').waitFor();
  }

  test('change password: mismatch, policy, wrong current password, then success', async () => {
    const page = await chromium.context.newPage();
    await signIn(page, lb.url, BOB);
    await page.getByRole('button', { name: 'Change password' }).click();
    const dlg = page.locator('#password-dialog');
    await dlg.waitFor({ state: 'visible' });
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'password-old');
    const current = dlg.getByLabel('Current password');
    const fresh = dlg.getByLabel('New password', { exact: true });
    const repeat = dlg.getByLabel('Repeat the new password');
    const submit = dlg.getByRole('button', { name: 'Change password' });
    const error = page.locator('#password-error');

    await current.fill(PASSWORD);
    await fresh.fill(CHANGED);
    await repeat.fill(CHANGED + 'x');
    await submit.click();
    await error.getByText('The two new passwords are not the same.').waitFor();

    // The customer's policy (12 characters and a digit), in the server's words.
    await fresh.fill('short');
    await repeat.fill('short');
    await submit.click();
    await error.getByText(/at least 12 characters/).waitFor();

    await current.fill('not my password');
    await fresh.fill(CHANGED);
    await repeat.fill(CHANGED);
    await submit.click();
    await error.getByText('The current password is wrong.').waitFor();

    // Escape closes the dialog; opened again, it is empty.
    await page.keyboard.press('Escape');
    await dlg.waitFor({ state: 'hidden' });
    assert.equal(await page.locator('#mail-view').isVisible(), true, 'Escape closes only the dialog');
    await page.getByRole('button', { name: 'Change password' }).click();
    assert.equal(await current.inputValue(), '');
    assert.equal(await error.isVisible(), false);

    await current.fill(PASSWORD);
    await fresh.fill(CHANGED);
    await repeat.fill(CHANGED);
    await repeat.press('Enter');
    await dlg.waitFor({ state: 'hidden' });
    await page.locator('#toast').getByText('Password changed').waitFor();
    // This session stays.
    assert.equal(await page.evaluate(async () => (await fetch('/api/v1/me')).status), 200);

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.locator('#login-form').waitFor({ state: 'visible' });
    await signInFails(page, PASSWORD);
    await signIn(page, lb.url, BOB, CHANGED);
    await page.close();
  });

  test('forgot password: the same answer for anyone, a link by mail, a new password, the link used up', async () => {
    const page = await freshPage();
    await page.getByRole('link', { name: 'Forgot password?' }).click();
    const form = page.locator('#forgot-form');
    await form.getByRole('heading', { name: 'Forgot password?' }).waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'forgot-email');

    // Unknown address first: the same words, and no mail.
    await form.getByLabel('Email address').fill('nobody@acme.test');
    await form.getByRole('button', { name: 'Send the reset link' }).click();
    await page.locator('#forgot-done').getByText(NEUTRAL).waitFor();
    await form.getByLabel('Email address').fill(BOB);
    await form.getByRole('button', { name: 'Send the reset link' }).click();
    await waitFor(async () => (await page.locator('#forgot-done').textContent()) === NEUTRAL, { what: 'the answer' });

    const mails = await waitFor(async () => {
      const m = (await internet.messages()).filter((x) => x.rcpt_tos.includes(BOB_HOME));
      return m.length > 0 && m;
    }, { timeout: 30000, interval: 250, what: 'the reset mail at the alternate address' });
    assert.equal(mails.length, 1, 'one mail, for bob only');
    const link = mails[0].text.match(/(\S+)#reset=([A-Za-z0-9_%-]+)/);
    assert.ok(link, `a reset link in: ${mails[0].text}`);
    assert.equal(link[1], `${lb.url}/`);
    assert.match(header(mails[0], 'Subject'), /password/i);

    // "Back to sign-in" works, then the link (same page: a hash change).
    await form.getByRole('link', { name: 'Back to sign-in' }).click();
    await page.locator('#login-form').waitFor({ state: 'visible' });
    await page.goto(link[0]);
    const reset = page.locator('#reset-form');
    await reset.getByRole('heading', { name: 'Choose a new password' }).waitFor();
    assert.equal(new URL(page.url()).hash, '', 'the token is taken out of the address bar');
    const fresh = reset.getByLabel('New password', { exact: true });
    const repeat = reset.getByLabel('Repeat the new password');
    const submit = reset.getByRole('button', { name: 'Set the new password' });
    await fresh.fill(RESET);
    await repeat.fill('something else 1');
    await submit.click();
    await page.locator('#reset-error').getByText('The two new passwords are not the same.').waitFor();
    await fresh.fill('weakpassword');
    await repeat.fill('weakpassword');
    await submit.click();
    await page.locator('#reset-error').getByText(/contain a digit/).waitFor();
    // A refused password leaves the link usable.
    await fresh.fill(RESET);
    await repeat.fill(RESET);
    await submit.click();
    await page.locator('#login-notice').getByText('Your password has been changed. Sign in with the new password.')
      .waitFor();
    assert.equal(await page.locator('#login-form').isVisible(), true);
    await signInFails(page, CHANGED);
    await signIn(page, lb.url, BOB, RESET);
    await page.close();

    // The link again, in a new tab (the page starts at it): used up.
    const again = await chromium.context.newPage();
    await again.goto(link[0]);
    const reset2 = again.locator('#reset-form');
    await reset2.waitFor({ state: 'visible' });
    await reset2.getByLabel('New password', { exact: true }).fill('yet another password 6');
    await reset2.getByLabel('Repeat the new password').fill('yet another password 6');
    await reset2.getByRole('button', { name: 'Set the new password' }).click();
    await again.locator('#reset-error').getByText(/invalid or expired/).waitFor();
    await again.close();
  });

  test('no request left the server', () => {
    assert.deepEqual(foreign, []);
  });
});
