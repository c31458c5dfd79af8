// archive.test.mjs — issue 5's webmail Archive in headless Chromium. acme.test
// has continuity and a subscription; two messages reach bob while its own
// server (an aiosmtpd sink) is up: delivered there and archived, never in the
// continuity mailbox. Then the server goes down (a third message is diverted:
// outage). Bob signs in during the outage, opens the Archive by keyboard,
// finds the pre-outage message by a word, by its sender and by its date,
// opens it, downloads it raw, and releases it: the copy is in his INBOX at
// once. An archived HTML newsletter is shown as mail is: in a sandboxed
// frame, its remote image (a local HTTP server standing in for the internet)
// fetched only after "Load remote images", its script never run. When the server comes back, the recovery re-delivers only what was
// diverted: the server got the released message exactly once, from its
// original delivery. Also the Archive on a phone-sized screen. Run: node
// --test tests/e2e/ (LIFEBOAT_BUILD = the build directory).

import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';

import { Lifeboat, Sink, header, launchChromium, signIn, smtpSend, waitFor } from './lifeboat.mjs';

const BOB = 'bob@acme.test';
const DAY = 86400 * 1000;

// Noon UTC some days ago: a date the date filter can pick by its day in any time zone near UTC.
function noonDaysAgo(n) {
  const d = new Date(Date.now() - n * DAY);
  d.setUTCHours(12, 0, 0, 0);
  return d;
}

function message({ from, subject, date, msgid, body, type = 'text/plain' }) {
  return [
    `From: ${from}`,
    `To: Bob <${BOB}>`,
    `Subject: ${subject}`,
    `Date: ${date.toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: <${msgid}>`,
    'MIME-Version: 1.0',
    `Content-Type: ${type}; charset=utf-8`,
    '',
    body,
    '',
  ].join('\r\n');
}

const MAIL = {
  budget: {
    from: 'Alice Example <alice@example.org>',
    subject: 'Quarterly budget figures',
    date: noonDaysAgo(10),
    msgid: 'budget.1@example.org',
    body: 'The zeppelin fund is over budget by 4%.',
  },
  lunch: {
    from: 'Dave <dave@example.com>',
    subject: 'Lunch on Friday',
    date: noonDaysAgo(5),
    msgid: 'lunch.2@example.com',
    body: 'Pizza at noon?',
  },
  news: {
    from: 'News <news@example.org>',
    subject: 'Newsletter with a tracking pixel',
    date: noonDaysAgo(7),
    msgid: 'news.4@example.org',
    type: 'text/html',
    body: '', // set once the pixel server listens
  },
  during: {
    from: 'Dave <dave@example.com>',
    subject: 'Is your mail down?',
    date: new Date(Date.now() - 60 * 1000),
    msgid: 'during.3@example.com',
    body: 'My last mail bounced around.',
  },
};

const day = (d) => d.toISOString().slice(0, 10);

describe('the Archive during an outage', () => {
  let lb;
  let server; // acme.test's own mail server: up at first
  let chromium;
  let page;
  let pixel; // the "internet" that the newsletter's image is on
  const hits = [];
  const foreign = [];
  const pageErrors = []; // CSP violations and uncaught exceptions

  before(async () => {
    pixel = http.createServer((req, res) => {
      hits.push(req.url);
      res.writeHead(200, { 'Content-Type': 'image/gif', 'Cache-Control': 'no-store' });
      res.end(Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64'));
    });
    await new Promise((resolve) => pixel.listen(0, '127.0.0.1', resolve));
    MAIL.news.pixel = `http://127.0.0.1:${pixel.address().port}/open.gif?u=bob`;
    MAIL.news.body = `<html><body><p>This week's news.</p><img src="${MAIL.news.pixel}" alt="pixel" width="1" `
      + 'height="1"><script>alert(1)</script></body></html>';
    server = await Sink.start();
    lb = await Lifeboat.create();
    await lb.start();
    lb.ctl(['customer', 'add', 'acme']);
    lb.ctl(['domain', 'add', 'acme.test', '--customer', 'acme', '--route', server.route]);
    lb.ctl(['user', 'add', BOB, '--password-stdin', '--name', 'Bob', '--activate'], 'correct horse 9 battery\n');
    lb.ctl(['subscription', 'start', 'acme']);
    lb.ctl(['continuity', 'enable', 'acme.test']);

    // Before the outage: delivered to the server, and archived.
    for (const key of ['budget', 'news', 'lunch']) { // oldest first
      await smtpSend(lb.smtpPort, 'sender@example.org', [BOB], message(MAIL[key]));
    }
    await waitFor(async () => (await server.messages()).length === 3,
      { timeout: 30000, interval: 200, what: 'the three messages at the server' });
    await waitFor(() => {
      return lb.ctlJson(['archive', 'search', '--user', BOB, 'zeppelin']).length === 1;
    }, { timeout: 30000, interval: 250, what: 'the budget message indexed in the archive' });

    // The server goes down: the next message is diverted, the domain is in outage.
    await server.close();
    const qid = await smtpSend(lb.smtpPort, 'sender@example.org', [BOB], message(MAIL.during));
    await waitFor(() => lb.mailbox(BOB).find((e) => e.msg_id === qid),
      { timeout: 30000, interval: 200, what: 'the third message diverted into bob\'s mailbox' });
    await waitFor(() => lb.continuityState('acme.test') === 'outage', { what: 'acme.test in outage' });
    assert.equal(lb.mailbox(BOB).length, 1, 'only the diverted message is in the continuity mailbox');

    chromium = await launchChromium();
    chromium.context.on('request', (req) => {
      const url = req.url();
      if (!url.startsWith(lb.url) && !url.startsWith('about:') && url !== MAIL.news.pixel) foreign.push(url);
    });
    chromium.context.on('page', (p) => {
      p.on('console', (msg) => {
        if (/Content Security Policy|Refused to/i.test(msg.text())) pageErrors.push(msg.text());
      });
      p.on('pageerror', (e) => pageErrors.push(String(e)));
    });
    page = await chromium.context.newPage();
    page.on('dialog', (d) => {
      pageErrors.push(`dialog: ${d.message()}`);
      d.dismiss();
    });
    await signIn(page, lb.url, BOB);
  });

  after(async () => {
    if (chromium) await chromium.close();
    await server?.stop();
    pixel?.close();
    if (lb) {
      const rc = await lb.stop();
      const findings = lb.sanitizerFindings();
      const log = lb.log();
      lb.cleanup();
      assert.equal(rc, 0, `lifeboatd exited with ${rc} after SIGTERM:\n${log.slice(-4000)}`);
      assert.deepEqual(findings, [], `sanitizer report in lifeboatd's output:\n${log.slice(-6000)}`);
    }
  });

  const results = () => page.locator('#archive-list button .subject').allTextContents();
  const inboxRows = () => page.locator('#message-list button .subject').allTextContents();

  async function searchArchive(fields) {
    await page.getByRole('button', { name: 'Clear' }).click();
    for (const [label, value] of Object.entries(fields)) {
      const field = page.locator('#archive-form').getByLabel(label, { exact: true });
      if (value === true) await field.check();
      else await field.fill(value);
    }
    await page.locator('#archive-form').getByRole('button', { name: 'Search' }).click();
  }

  async function expectResults(subjects, what) {
    await waitFor(async () => JSON.stringify(await results()) === JSON.stringify(subjects),
      { what: `${what}: ${subjects.join(', ')} (got ${await results()})` });
  }

  test('the outage banner is up and the INBOX has only the diverted message', async () => {
    await page.locator('#status-banner.outage').waitFor();
    await waitFor(async () => (await inboxRows()).length === 1, { what: 'one message in the INBOX' });
    assert.deepEqual(await inboxRows(), [MAIL.during.subject]);
  });

  test('the Archive opens by keyboard and lists everything, newest first', async () => {
    await page.locator('#archive-open').focus();
    await page.keyboard.press('Enter');
    await page.locator('#archive').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#message-pane').isVisible(), false);
    assert.equal(await page.locator('#archive-open').getAttribute('aria-current'), 'true');
    assert.equal(await page.locator('#folder-list [aria-current]').count(), 0);
    // Focus lands in the search form.
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'archive-q');
    await expectResults([MAIL.during.subject, MAIL.lunch.subject, MAIL.news.subject, MAIL.budget.subject], 'all four');
    assert.match(await page.locator('#archive-info').textContent(), /1–4 of 4/);
  });

  test('search by a word, by the sender, by the date range; nothing found is said', async () => {
    await searchArchive({ Words: 'zeppelin' });
    await expectResults([MAIL.budget.subject], 'by a body word');
    await searchArchive({ Sender: 'alice@example.org' });
    await expectResults([MAIL.budget.subject], 'by the sender');
    await searchArchive({ Sender: 'dave@example.com' });
    await expectResults([MAIL.during.subject, MAIL.lunch.subject], 'by the other sender');
    await searchArchive({ 'Earliest date': day(MAIL.budget.date), 'Latest date': day(MAIL.budget.date) });
    await expectResults([MAIL.budget.subject], 'by the date');
    await searchArchive({ Words: 'nonexistentword' });
    await expectResults([], 'nothing');
    assert.equal(await page.locator('#archive-info').textContent(), 'Nothing in the archive matches.');
    await searchArchive({ 'Earliest date': day(MAIL.lunch.date), 'Latest date': day(MAIL.budget.date) });
    await page.locator('#archive-error').getByText('The earliest date is after the latest date.').waitFor();
  });

  test('open the pre-outage message, download it raw, release it into the INBOX', async () => {
    await searchArchive({ Words: 'zeppelin', Sender: 'alice' });
    await expectResults([MAIL.budget.subject], 'the budget message');
    await page.locator('#archive-list button', { hasText: MAIL.budget.subject }).click();
    const reader = page.locator('#archive-reader');
    await reader.waitFor({ state: 'visible' });
    assert.equal(await page.locator('#archive-subject').textContent(), MAIL.budget.subject);
    assert.equal(await page.locator('#archive-from-hdr').textContent(), MAIL.budget.from);
    await page.locator('#archive-body').getByText('The zeppelin fund is over budget by 4%.').waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'archive-reader');

    // The raw message, as the link downloads it.
    const raw = await page.evaluate(async () => {
      const a = document.getElementById('archive-raw');
      const r = await fetch(a.href);
      return { status: r.status, type: r.headers.get('Content-Type'), text: await r.text(), download: a.download };
    });
    assert.equal(raw.status, 200);
    assert.match(raw.type, /^message\/rfc822/);
    assert.match(raw.text, /\r?\nSubject: Quarterly budget figures\r?\n/);
    assert.match(raw.download, /^archive-\d+\.eml$/);

    await reader.getByRole('button', { name: 'Release to my mailbox' }).click();
    await page.locator('#archive-release-status').getByText('Released: a copy is in your INBOX').waitFor();
    // The INBOX's unread count follows at once.
    await waitFor(async () => (await page.locator('#folder-list button[data-folder="INBOX"] .count')
      .textContent().catch(() => '')) === '2', { what: 'INBOX unread count 2' });

    await page.locator('#folder-list button[data-folder="INBOX"]').click();
    await page.locator('#message-pane').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#archive').isVisible(), false);
    await waitFor(async () => (await inboxRows()).includes(MAIL.budget.subject), { what: 'the release in the INBOX' });
    await page.locator('#message-list button', { hasText: MAIL.budget.subject }).click();
    await page.locator('#reader-body').getByText('The zeppelin fund is over budget by 4%.').waitFor();
  });

  test('an HTML entry is sandboxed; its remote image loads only after "Load remote images"', async () => {
    await page.getByRole('button', { name: 'Archive' }).click();
    await searchArchive({ Sender: 'news@example.org' });
    await expectResults([MAIL.news.subject], 'the newsletter');
    await page.locator('#archive-list button', { hasText: MAIL.news.subject }).click();
    const frame = page.locator('#archive-body iframe');
    await frame.waitFor();
    assert.equal(await frame.getAttribute('sandbox'), '');
    await page.frameLocator('#archive-body iframe').getByText('This week\'s news.').waitFor();
    await page.waitForTimeout(300); // time for a pixel request, were one going to be made
    assert.deepEqual(hits, [], 'the pixel was fetched before the user asked for images');
    assert.equal(await page.locator('#archive-images-text').textContent(),
      '1 remote image was blocked to protect your privacy.');
    await page.locator('#archive-reader').getByRole('button', { name: 'Load remote images' }).click();
    await waitFor(() => hits.length > 0, { timeout: 10000, what: 'the pixel after "Load remote images"' });
    await page.locator('#archive-images').waitFor({ state: 'hidden' });
    assert.deepEqual(hits, ['/open.gif?u=bob']);

    // Escape closes the entry; focus returns to its row.
    await page.keyboard.press('Escape');
    await page.locator('#archive-reader').waitFor({ state: 'hidden' });
    assert.equal(await page.evaluate(() => document.activeElement?.closest('#archive-list li')?.textContent
      .includes('Newsletter with a tracking pixel')), true);
  });

  test('on a phone-sized screen the open entry takes the list\'s place; Back returns', async () => {
    const phone = await chromium.context.newPage();
    await phone.setViewportSize({ width: 390, height: 800 });
    await signIn(phone, lb.url, BOB);
    await phone.getByRole('button', { name: 'Archive' }).click();
    await phone.locator('#archive-list button').first().waitFor();
    const box = await phone.locator('#archive').boundingBox();
    assert.ok(box.width <= 390, `the archive fits the screen (${box.width})`);
    await phone.locator('#archive-list button').first().click();
    await phone.locator('#archive-reader').waitFor({ state: 'visible' });
    assert.equal(await phone.locator('#archive').isVisible(), false);
    await phone.getByRole('button', { name: 'Back to the archive' }).click();
    await phone.locator('#archive-list').waitFor({ state: 'visible' });
    assert.equal(await phone.locator('#archive-reader').isVisible(), false);
    await phone.close();
    // That sign-in replaced the session cookie; the first tab signs in again.
    await page.evaluate(() => sessionStorage.clear());
    await signIn(page, lb.url, BOB);
  });

  test('after recovery the server has each message once: the released one from its first delivery', async () => {
    await server.open();
    await waitFor(async () => (await page.evaluate(async () => (await (await fetch('/api/v1/status')).json()).state))
      === 'normal', { timeout: 60000, interval: 250, what: 'acme.test back to normal' });
    const got = await server.messages();
    const count = (msgid) => got.filter((m) => header(m, 'Message-ID') === `<${msgid}>`).length;
    assert.equal(count(MAIL.budget.msgid), 1, 'budget: once, from before the outage');
    assert.equal(count(MAIL.lunch.msgid), 1, 'lunch: once');
    assert.equal(count(MAIL.news.msgid), 1, 'news: once');
    assert.equal(count(MAIL.during.msgid), 1, 'the diverted one: once, by the recovery');
    assert.equal(got.length, 4, `only those: ${got.map((m) => header(m, 'Subject'))}`);
  });

  test('no CSP violation, no script error, no request leaving the server', () => {
    assert.deepEqual(pageErrors, []);
    assert.deepEqual(foreign, []);
  });
});
