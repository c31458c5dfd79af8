// webmail.test.mjs — the webmail end to end (issue 4): a real lifeboatd with
// acme.test in an outage (continuity on, its server a closed port), a message
// mailed in over SMTP and diverted into bob's continuity mailbox, then
// headless Chromium: the login page (wrong password refused), the outage
// banner, reading the message, flagging it and deleting it into Trash. Also
// the static files' serving (types, headers, no traversal) and a phone-sized
// layout. Run: node --test tests/e2e/ (LIFEBOAT_BUILD = the build directory).

import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';

import { Lifeboat, PASSWORD, freePort, launchChromium, makeMessage, signIn, smtpSend, waitFor } from './lifeboat.mjs';

const BOB = 'bob@acme.test';
const SUBJECT = 'Outage test: the quarterly figures';
const BODY_LINE = 'The figures are attached in spirit.';

/** A GET whose path goes on the wire exactly as given (fetch would normalise "..", "%2e"). */
function rawGet(port, rawPath) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: rawPath, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('webmail', () => {
  let lb;
  let chromium;
  let entry;
  const cspViolations = [];
  const foreignRequests = [];

  before(async () => {
    lb = await Lifeboat.create();
    await lb.start();
    const dead = await freePort();
    lb.ctl(['customer', 'add', 'acme']);
    lb.ctl(['domain', 'add', 'acme.test', '--customer', 'acme', '--route', `127.0.0.1:${dead}`]);
    lb.ctl(['user', 'add', BOB, '--password-stdin', '--name', 'Bob', '--activate'], PASSWORD + '\n');
    lb.ctl(['subscription', 'start', 'acme']);
    lb.ctl(['continuity', 'enable', 'acme.test']);

    const qid = await smtpSend(lb.smtpPort, 'alice@example.org', [BOB],
      makeMessage({ to: BOB, subject: SUBJECT, body: `Hello Bob,\r\n\r\n${BODY_LINE}\r\n\r\nAlice` }));
    entry = await waitFor(() => lb.mailbox(BOB).find((e) => e.msg_id === qid),
      { timeout: 30000, interval: 200, what: `bob's copy of ${qid} in the continuity mailbox` });
    await waitFor(() => lb.continuityState('acme.test') === 'outage', { timeout: 15000, what: 'acme.test in outage' });

    chromium = await launchChromium();
    chromium.context.on('page', (page) => watch(page));
  });

  function watch(page) {
    page.on('console', (msg) => {
      if (/Content Security Policy|Refused to/i.test(msg.text())) cspViolations.push(msg.text());
    });
    page.on('request', (req) => {
      if (!req.url().startsWith(lb.url) && !req.url().startsWith('about:')) foreignRequests.push(req.url());
    });
  }

  async function newPage(viewport) {
    const page = await chromium.context.newPage();
    if (viewport) await page.setViewportSize(viewport);
    return page;
  }

  after(async () => {
    if (chromium) await chromium.close();
    if (lb) {
      const rc = await lb.stop();
      const findings = lb.sanitizerFindings();
      const log = lb.log();
      lb.cleanup();
      assert.equal(rc, 0, `lifeboatd exited with ${rc} after SIGTERM:\n${log.slice(-4000)}`);
      assert.deepEqual(findings, [], `sanitizer report in lifeboatd's output:\n${log.slice(-6000)}`);
    }
  });

  test('the web app is served with its types and the security headers, and nothing else is', async () => {
    for (const [p, type] of [['/', 'text/html'], ['/index.html', 'text/html'], ['/app.css', 'text/css'],
      ['/js/app.js', 'text/javascript'], ['/js/api.js', 'text/javascript'], ['/js/mailbox.js', 'text/javascript'],
      ['/js/compose.js', 'text/javascript'], ['/js/mailtext.js', 'text/javascript'],
      ['/js/password.js', 'text/javascript'], ['/js/ui.js', 'text/javascript'],
      ['/favicon.svg', 'image/svg+xml']]) {
      const r = await rawGet(lb.httpPort, p);
      assert.equal(r.status, 200, p);
      assert.ok(r.headers['content-type'].startsWith(type), `${p}: ${r.headers['content-type']}`);
      assert.match(r.headers['content-security-policy'], /default-src 'self'/);
      assert.equal(r.headers['x-content-type-options'], 'nosniff');
    }
    const index = await rawGet(lb.httpPort, '/');
    assert.doesNotMatch(index.body, /<script(?![^>]*\bsrc=)[^>]*>|<style|\sstyle=|\son[a-z]+=/i,
      'no inline script, style or handler: the CSP would refuse them');
    for (const p of ['/../lifeboat.conf', '/%2e%2e/lifeboat.conf', '/js/%2e%2e/index.html', '/js/../index.html',
      '/js/', '/js', '/.git/config', '/%2fetc%2fpasswd', '//etc/passwd', '/web/index.html']) {
      const r = await rawGet(lb.httpPort, p);
      assert.ok(r.status === 404 || r.status === 400, `${p}: ${r.status}`);
      assert.doesNotMatch(r.body, /<html|data_dir|root:/, p);
    }
  });

  test('a wrong password shows an error and no mailbox', async () => {
    const page = await newPage();
    await page.goto(lb.url + '/');
    const form = page.locator('#login-form');
    await form.getByLabel('Email address').fill(BOB);
    await form.getByLabel('Password').fill('not the password');
    await form.getByRole('button', { name: 'Sign in' }).click();
    const alert = page.locator('#login-error');
    await alert.waitFor({ state: 'visible' });
    assert.match(await alert.textContent(), /wrong email address or password/i);
    assert.equal(await page.locator('#mail-view').isVisible(), false);
    await page.close();
  });

  test('log in, see the outage, read, flag and delete a diverted message', async () => {
    const page = await newPage();
    await page.goto(lb.url + '/');
    const form = page.locator('#login-form');
    await form.getByLabel('Email address').fill(BOB);
    await form.getByLabel('Password').fill(PASSWORD);
    await form.getByLabel('Password').press('Enter'); // the keyboard way
    await page.locator('#mail-view').waitFor({ state: 'visible' });

    const banner = page.locator('#status-banner');
    await banner.waitFor({ state: 'visible' });
    assert.match(await banner.textContent(), /acme\.test is down since/);

    // INBOX shows one unread message.
    await page.locator('#folder-list button[data-folder="INBOX"] .count').waitFor();
    assert.equal(await page.locator('#folder-list button[data-folder="INBOX"] .count').textContent(), '1');
    const row = page.locator(`#message-list button[data-id="${entry.id}"]`);
    await row.waitFor();
    assert.match(await row.textContent(), /quarterly figures/);
    assert.match(await row.getAttribute('class'), /\bunread\b/);

    // Open it: the reading pane shows it, and it is now read.
    await row.click();
    await page.locator('#reader').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#reader-subject').textContent(), SUBJECT);
    assert.match(await page.locator('#reader-from').textContent(), /alice@example\.org/);
    await page.locator('#reader-body').getByText(BODY_LINE).waitFor();
    await waitFor(() => lb.mailbox(BOB).find((e) => e.id === entry.id)?.seen === true, { what: 'seen in the store' });
    await page.locator('#folder-list button[data-folder="INBOX"] .count').waitFor({ state: 'detached' });

    // Flag it.
    await page.getByRole('button', { name: 'Flag', exact: true }).click();
    await page.locator('#act-flag[aria-pressed="true"]').waitFor();
    await waitFor(() => lb.mailbox(BOB).find((e) => e.id === entry.id)?.flagged === true,
      { what: 'flagged in the store' });

    // Delete it: gone from INBOX, in Trash, never to be re-delivered.
    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    await page.locator('#reader').waitFor({ state: 'hidden' });
    await row.waitFor({ state: 'detached' });
    const stored = await waitFor(() => lb.mailbox(BOB).find((e) => e.id === entry.id && e.folder === 'Trash'),
      { what: 'the message in Trash' });
    assert.equal(stored.redeliver, 'deleted');
    await page.locator('#folder-list button[data-folder="Trash"]').click();
    await page.locator(`#message-list button[data-id="${entry.id}"]`).waitFor();
    assert.match(await page.locator('#list-info').textContent(), /Trash: 1–1 of 1/);

    // Sign out: back to the login page, and the session is gone.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.locator('#login-view').waitFor({ state: 'visible' });
    const me = await page.evaluate(async () => (await fetch('/api/v1/me')).status);
    assert.equal(me, 401);
    await page.close();
  });

  test('on a phone-sized screen the columns stack', async () => {
    const page = await newPage({ width: 390, height: 800 });
    await signIn(page, lb.url, BOB);
    const list = await page.locator('section.list').boundingBox();
    const folders = await page.locator('nav.folders').boundingBox();
    assert.ok(list.width > 350, `the list takes the width: ${list.width}`);
    assert.ok(folders.y + folders.height <= list.y + 1, 'the folders sit above the list');
    await page.close();
  });

  test('no CSP violation and no request leaving the server', () => {
    assert.deepEqual(cspViolations, []);
    assert.deepEqual(foreignRequests, []);
  });

  // The server's sanitised "html" field is not there yet (issue 4 item 4):
  // the answer is rewritten here to carry hostile HTML, to show the client's
  // half of the defence, the <iframe sandbox> without allow-scripts.
  test('an HTML body is shown in a sandboxed iframe and runs no script', async () => {
    const page = await newPage();
    const dialogs = [];
    page.on('dialog', async (d) => {
      dialogs.push(d.message());
      await d.dismiss();
    });
    await page.route(`**/api/v1/messages/${entry.id}`, async (route) => {
      if (route.request().method() !== 'GET') return route.continue();
      const resp = await route.fetch();
      const json = await resp.json();
      json.html = '<p>Hello in <b>HTML</b></p><script>alert("script")</script>' +
        '<img src="x" onerror="alert(\'onerror\')"><a href="javascript:alert(\'link\')">link</a>';
      await route.fulfill({ response: resp, json });
    });
    await signIn(page, lb.url, BOB);
    await page.locator('#folder-list button[data-folder="Trash"]').click();
    await page.locator(`#message-list button[data-id="${entry.id}"]`).click();
    const frame = page.locator('#reader-body iframe');
    await frame.waitFor();
    assert.equal(await frame.getAttribute('sandbox'), '');
    await page.frameLocator('#reader-body iframe').getByText('Hello in').waitFor();
    await page.frameLocator('#reader-body iframe').getByText('link').click().catch(() => {});
    await page.waitForTimeout(300);
    assert.deepEqual(dialogs, []);
    await page.close();
  });
});
