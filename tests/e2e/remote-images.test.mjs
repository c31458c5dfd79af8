// remote-images.test.mjs — "block remote images until the user clicks to load
// them" (issue 4, item 4), in Chromium: an HTML mail with a remote image (a
// tracking pixel on a local HTTP server standing in for the internet) is
// opened in the reading pane and the pixel is NOT fetched; after "Load remote
// images" it is fetched, exactly once. Scripts in the same mail still run
// nowhere (the frame is sandboxed, the page's CSP allows scripts from 'self'
// only).

import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';

import { Lifeboat, PASSWORD, freePort, launchChromium, signIn, smtpSend, waitFor } from './lifeboat.mjs';

const BOB = 'bob@acme.test';
const SUBJECT = 'Newsletter with a tracking pixel';

let lb;
let chromium;
let pixel;
const hits = [];

before(async () => {
  pixel = http.createServer((req, res) => {
    hits.push(req.url);
    res.writeHead(200, { 'Content-Type': 'image/gif', 'Cache-Control': 'no-store' });
    res.end(Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64'));
  });
  await new Promise((resolve) => pixel.listen(0, '127.0.0.1', resolve));
  const pixelUrl = `http://127.0.0.1:${pixel.address().port}/open.gif?u=bob`;

  lb = await Lifeboat.create();
  await lb.start();
  lb.ctl(['customer', 'add', 'acme']);
  lb.ctl(['domain', 'add', 'acme.test', '--customer', 'acme', '--route', `127.0.0.1:${await freePort()}`]);
  lb.ctl(['user', 'add', BOB, '--password-stdin', '--name', 'Bob', '--activate'], PASSWORD + '\n');
  lb.ctl(['subscription', 'start', 'acme']);
  lb.ctl(['continuity', 'enable', 'acme.test']);

  const html = `<html><body><p>Hello Bob, this week's news.</p><img src="${pixelUrl}" alt="pixel" width="1" height="1">`
    + `<script>alert(1)</script><img src=x onerror="alert(2)"></body></html>`;
  const msg = [
    'From: News <news@example.org>', `To: ${BOB}`, `Subject: ${SUBJECT}`, 'Date: Sat, 28 Nov 2026 01:00:00 +0000',
    'Message-ID: <pixel-1@example.org>', 'MIME-Version: 1.0', 'Content-Type: text/html; charset=utf-8', '', html, '',
  ].join('\r\n');
  const qid = await smtpSend(lb.smtpPort, 'news@example.org', [BOB], msg);
  await waitFor(() => lb.mailbox(BOB).find((e) => e.msg_id === qid),
    { timeout: 30000, interval: 200, what: 'the newsletter in bob\'s mailbox' });
  chromium = await launchChromium();
});

after(async () => {
  if (chromium) await chromium.close();
  if (pixel) pixel.close();
  if (lb) {
    const rc = await lb.stop();
    assert.equal(rc, 0, 'lifeboatd exit status');
    assert.deepEqual(lb.sanitizerFindings(), []);
  }
});

test('a remote image loads only after "Load remote images"', async () => {
  const page = await chromium.context.newPage();
  const dialogs = [];
  page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss(); });
  await signIn(page, lb.url, BOB);
  await page.getByRole('button', { name: new RegExp(SUBJECT) }).first().click();
  await page.locator('#reader-subject').filter({ hasText: SUBJECT }).waitFor();
  const frame = page.frameLocator('iframe');
  await frame.getByText("this week's news").waitFor();
  // Time for a pixel request to have been made, were it going to be.
  await page.waitForTimeout(500);
  assert.deepEqual(hits, [], 'the pixel was fetched before the user asked for images');

  await page.getByRole('button', { name: 'Load remote images' }).click();
  await waitFor(() => hits.length > 0, { timeout: 10000, what: 'the pixel after "Load remote images"' });
  await page.waitForTimeout(300);
  assert.deepEqual(hits, ['/open.gif?u=bob']);
  assert.deepEqual(dialogs, [], 'a script in the mail ran');
});
