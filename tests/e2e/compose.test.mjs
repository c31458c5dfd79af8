// compose.test.mjs — issue 4's outage flow in headless Chromium: acme.test's
// own server (an aiosmtpd sink) is down, continuity is on, mail sent in over
// SMTP is diverted into bob's mailbox. Bob signs in, opens a diverted message,
// replies with an attachment (the reply reaches the "internet" — the
// outbound_relay sink — with In-Reply-To, References and the file, and is in
// Sent with the attachment listed), replies to all, forwards (the original's
// attachment is carried), sees the server's refusal and his own typing
// mistakes, and deletes one diverted message. Then the server comes back, the
// recovery drains, and the server gets every other diverted message exactly
// once and never the deleted one. Also the compose form on a phone and by
// keyboard. Run: node --test tests/e2e/ (LIFEBOAT_BUILD = the build directory).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { Lifeboat, Sink, header, launchChromium, signIn, smtpSend, waitFor } from './lifeboat.mjs';

const BOB = 'bob@acme.test';
const ALIAS = 'sales@acme.test';
const AGENDA = 'Agenda for Monday:\n1. the outage\n2. the figures\n';
const NOTES = 'Notes attached to the reply, with ümlauts.\n';

function b64lines(text) {
  return Buffer.from(text).toString('base64').replace(/.{1,76}/g, '$&\r\n').trimEnd();
}

/** The diverted messages: one with an attachment and a Cc, two plain ones. */
const ORIGINALS = {
  plan: {
    msgid: 'plan.1@example.org',
    subject: 'Project plan',
    data: [
      'From: Alice Example <alice@example.org>',
      `To: Bob <${BOB}>, ${ALIAS}`,
      'Cc: Carol <carol@example.net>',
      'Subject: Project plan',
      'Date: Fri, 27 Nov 2026 22:00:00 +0000',
      'Message-ID: <plan.1@example.org>',
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="b1"',
      '',
      '--b1',
      'Content-Type: text/plain; charset=utf-8',
      '',
      'Hello Bob,',
      '',
      'the plan is attached.',
      '',
      'Alice',
      '--b1',
      'Content-Type: text/plain; charset=utf-8; name="agenda.txt"',
      'Content-Disposition: attachment; filename="agenda.txt"',
      'Content-Transfer-Encoding: base64',
      '',
      b64lines(AGENDA),
      '--b1--',
      '',
    ].join('\r\n'),
  },
  doomed: { msgid: 'doomed.2@example.org', subject: 'Please delete me' },
  keep: { msgid: 'keep.3@example.org', subject: 'Keep me' },
};
for (const o of Object.values(ORIGINALS)) {
  o.data ??= [
    'From: Dave <dave@example.com>',
    `To: ${BOB}`,
    `Subject: ${o.subject}`,
    'Date: Fri, 27 Nov 2026 22:01:00 +0000',
    `Message-ID: <${o.msgid}>`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    `This is "${o.subject}".`,
    '',
  ].join('\r\n');
}

describe('compose during an outage', () => {
  let lb;
  let internet; // outbound_relay: where mail to other domains goes
  let server;   // acme.test's own mail server, down at first
  let chromium;
  let page;
  const entries = {};
  const dialogs = [];
  const foreign = [];

  before(async () => {
    internet = await Sink.start();
    server = await Sink.start({ closed: true });
    lb = await Lifeboat.create({ outbound_relay: internet.route, max_recipients: 4 });
    await lb.start();
    lb.ctl(['customer', 'add', 'acme']);
    lb.ctl(['domain', 'add', 'acme.test', '--customer', 'acme', '--route', server.route]);
    lb.ctl(['user', 'add', BOB, '--password-stdin', '--name', 'Bob', '--activate'], 'correct horse 9 battery\n');
    lb.ctl(['alias', 'add', BOB, ALIAS]);
    lb.ctl(['subscription', 'start', 'acme']);
    lb.ctl(['continuity', 'enable', 'acme.test']);

    for (const [key, o] of Object.entries(ORIGINALS)) {
      o.qid = await smtpSend(lb.smtpPort, 'sender@example.org', [BOB], o.data);
      entries[key] = await waitFor(() => lb.mailbox(BOB).find((e) => e.msg_id === o.qid),
        { timeout: 30000, interval: 200, what: `${key} diverted into bob's mailbox` });
    }
    await waitFor(() => lb.continuityState('acme.test') === 'outage', { what: 'acme.test in outage' });

    chromium = await launchChromium();
    chromium.context.on('request', (req) => {
      if (!req.url().startsWith(lb.url) && !req.url().startsWith('about:') && !req.url().startsWith('blob:')) {
        foreign.push(req.url());
      }
    });
    page = await chromium.context.newPage();
    page.on('dialog', async (d) => {
      dialogs.push(d.message());
      await (page.dialogAnswer ? d.accept() : d.dismiss());
    });
    await signIn(page, lb.url, BOB);
  });

  after(async () => {
    if (chromium) await chromium.close();
    await internet?.stop();
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

  async function openInbox() {
    await page.locator('#folder-list button[data-folder="INBOX"]').click();
  }

  async function openMessage(key) {
    await page.locator(`#message-list button[data-id="${entries[key].id}"]`).click();
    await page.locator('#reader').waitFor({ state: 'visible' });
    await waitFor(async () => (await page.locator('#reader-subject').textContent()) === ORIGINALS[key].subject,
      { what: `${key} in the reading pane` });
  }

  const sentCount = () => page.locator('#folder-list button[data-folder="Sent"] .count').textContent();

  /** The messages at the internet sink that answer the given Message-ID. */
  async function arrivedAnswering(msgid, n) {
    return waitFor(async () => {
      const got = (await internet.messages()).filter((m) => header(m, 'In-Reply-To') === `<${msgid}>` ||
        header(m, 'Subject').startsWith('Fwd:'));
      return got.length >= n && got;
    }, { timeout: 30000, interval: 250, what: `${n} message(s) at the internet sink` });
  }

  test('reply with an attachment: in Sent with it, and at the internet with In-Reply-To and the file', async () => {
    await openMessage('plan');
    // The original's attachment is listed in the reading pane.
    await page.locator('#reader-attachments').getByRole('link', { name: 'agenda.txt' }).waitFor();

    await page.getByRole('button', { name: 'Reply', exact: true }).click();
    const compose = page.locator('#compose');
    await compose.waitFor({ state: 'visible' });
    assert.equal(await page.locator('#compose-title').textContent(), 'Reply');
    assert.equal(await page.getByLabel('To', { exact: true }).inputValue(), 'Alice Example <alice@example.org>');
    assert.equal(await page.getByLabel('Cc', { exact: true }).inputValue(), '');
    assert.equal(await page.getByLabel('Subject').inputValue(), 'Re: Project plan');
    // The original came to bob's address (and the alias): From is bob's.
    assert.equal(await page.getByLabel('From').inputValue(), BOB);
    const body = page.getByLabel('Message text');
    // Focus is in the text, before the quote.
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'compose-body');
    const quoted = await body.inputValue();
    assert.match(quoted, /\nOn .+, Alice Example wrote:\n> Hello Bob,\n> \n> the plan is attached\.\n/);
    await page.keyboard.type('Thanks, notes attached.');

    // Two files chosen, one removed again.
    await page.getByLabel('Attach files').setInputFiles([
      { name: 'reply-notes.txt', mimeType: 'text/plain', buffer: Buffer.from(NOTES) },
      { name: 'wrong.bin', mimeType: 'application/octet-stream', buffer: Buffer.alloc(3000, 7) },
    ]);
    const files = page.locator('#compose-attachments li');
    await waitFor(async () => (await files.count()) === 2, { what: 'two files listed' });
    assert.match(await files.nth(1).textContent(), /wrong\.bin.*2\.9 KB/);
    await page.getByRole('button', { name: 'Remove wrong.bin' }).click();
    await waitFor(async () => (await files.count()) === 1, { what: 'one file listed' });
    assert.match(await files.first().textContent(), /reply-notes\.txt/);

    assert.equal(await page.locator('#folder-list button[data-folder="Sent"] .count').count(), 0);
    await page.getByRole('button', { name: 'Send', exact: true }).click();
    await compose.waitFor({ state: 'hidden' });
    await page.locator('#toast').getByText('Sent').waitFor();
    await waitFor(async () => (await sentCount().catch(() => '')) === '1', { what: 'Sent count 1' });

    // In Sent, with the attachment listed.
    await page.locator('#folder-list button[data-folder="Sent"]').click();
    const row = page.locator('#message-list button', { hasText: 'Re: Project plan' });
    await row.click();
    await waitFor(async () => (await page.locator('#reader-subject').textContent()) === 'Re: Project plan',
      { what: 'the reply in the reading pane' });
    await page.locator('#reader-attachments').getByRole('link', { name: 'reply-notes.txt' }).waitFor();
    await page.locator('#reader-body').getByText('Thanks, notes attached.').waitFor();

    // At the internet: From bob, In-Reply-To and References of the original, the file intact.
    const [m] = await arrivedAnswering(ORIGINALS.plan.msgid, 1);
    assert.deepEqual(m.rcpt_tos, ['alice@example.org']);
    assert.equal(m.mail_from, BOB);
    assert.match(header(m, 'From'), /Bob <bob@acme\.test>/);
    assert.equal(header(m, 'References'), `<${ORIGINALS.plan.msgid}>`);
    assert.equal(header(m, 'Subject'), 'Re: Project plan');
    assert.match(m.text, /^Thanks, notes attached\.\r?\n/);
    assert.match(m.text, /> the plan is attached\./);
    assert.deepEqual(m.attachments.map((a) => [a.filename, a.content_type]), [['reply-notes.txt', 'text/plain']]);
    assert.equal(Buffer.from(m.attachments[0].data_base64, 'base64').toString(), NOTES);
    assert.deepEqual(m.defects, []);
  });

  test('reply all by keyboard: everyone but oneself, sent with Ctrl+Enter', async () => {
    await openInbox();
    await openMessage('plan');
    await page.locator('#reader').focus();
    await page.keyboard.press('a');
    await page.locator('#compose').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#compose-title').textContent(), 'Reply all');
    assert.equal(await page.getByLabel('To', { exact: true }).inputValue(), 'Alice Example <alice@example.org>');
    assert.equal(await page.getByLabel('Cc', { exact: true }).inputValue(), 'Carol <carol@example.net>');
    // Answer from the alias instead.
    await page.getByLabel('From').selectOption(ALIAS);
    await page.getByLabel('Message text').press('Control+Home');
    await page.keyboard.type('Replying to all.');
    await page.keyboard.press('Control+Enter');
    await page.locator('#compose').waitFor({ state: 'hidden' });
    await waitFor(async () => (await sentCount().catch(() => '')) === '2', { what: 'Sent count 2' });

    const got = await arrivedAnswering(ORIGINALS.plan.msgid, 2);
    const m = got.find((x) => /Replying to all/.test(x.text));
    assert.ok(m, 'the reply-all at the internet');
    assert.deepEqual([...m.rcpt_tos].sort(), ['alice@example.org', 'carol@example.net']);
    assert.equal(m.mail_from, ALIAS);
    assert.match(header(m, 'Cc'), /carol@example\.net/);
    assert.equal(m.attachments.length, 0);
  });

  test('forward carries the original attachment; Bcc stays out of the headers', async () => {
    await openInbox();
    await openMessage('plan');
    await page.getByRole('button', { name: 'Forward' }).click();
    await page.locator('#compose').waitFor({ state: 'visible' });
    assert.equal(await page.getByLabel('Subject').inputValue(), 'Fwd: Project plan');
    // Focus starts in To.
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'compose-to');
    const text = await page.getByLabel('Message text').inputValue();
    assert.match(text, /---------- Forwarded message ----------\nFrom: Alice Example <alice@example\.org>\n/);
    assert.match(text, /\nSubject: Project plan\n/);
    await page.locator('#compose-attachments li', { hasText: 'agenda.txt' }).waitFor();
    await page.keyboard.type('Frank <frank@example.com>');
    await page.getByLabel('Bcc', { exact: true }).fill('grace@example.com');
    await page.getByRole('button', { name: 'Send', exact: true }).click();
    await page.locator('#compose').waitFor({ state: 'hidden' });
    await waitFor(async () => (await sentCount().catch(() => '')) === '3', { what: 'Sent count 3' });

    const got = await arrivedAnswering(ORIGINALS.plan.msgid, 3);
    const m = got.find((x) => header(x, 'Subject') === 'Fwd: Project plan');
    assert.ok(m, 'the forward at the internet');
    assert.deepEqual([...m.rcpt_tos].sort(), ['frank@example.com', 'grace@example.com']);
    assert.equal(m.headers.bcc, undefined);
    assert.equal(header(m, 'In-Reply-To'), '');
    assert.deepEqual(m.attachments.map((a) => a.filename), ['agenda.txt']);
    assert.equal(Buffer.from(m.attachments[0].data_base64, 'base64').toString(), AGENDA);
  });

  test('typing mistakes are caught here, the server\'s refusal is shown, Escape asks before discarding', async () => {
    await page.keyboard.press('c');
    await page.locator('#compose').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#compose-title').textContent(), 'New message');
    const err = page.locator('#compose-error');

    // Nobody to send to.
    await page.getByRole('button', { name: 'Send', exact: true }).click();
    await err.getByText('Add at least one recipient.').waitFor();

    // Not an address: caught before the server.
    await page.getByLabel('To', { exact: true }).fill('ann@example.com, not an address');
    await page.getByRole('button', { name: 'Send', exact: true }).click();
    await err.getByText('“not an address” is not an email address.').waitFor();
    assert.equal(await page.getByLabel('To', { exact: true }).getAttribute('aria-invalid'), 'true');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'compose-to');

    // Five recipients where the server allows four (max_recipients): the server says no.
    await page.getByLabel('To', { exact: true }).fill('a1@example.com, a2@example.com, a3@example.com');
    await page.getByLabel('Cc', { exact: true }).fill('a4@example.com; a5@example.com');
    await page.getByLabel('Subject').fill('Too many');
    await page.getByRole('button', { name: 'Send', exact: true }).click();
    await err.getByText('The message was not sent: too many recipients.').waitFor();
    assert.equal(await page.locator('#compose').isVisible(), true);

    // Escape: asks, "keep" keeps it, "discard" closes it.
    page.dialogAnswer = false;
    await page.getByLabel('Subject').press('Escape');
    await waitFor(() => dialogs.includes('Discard this message?'), { what: 'the discard question' });
    assert.equal(await page.locator('#compose').isVisible(), true);
    page.dialogAnswer = true;
    await page.getByLabel('Subject').press('Escape');
    await page.locator('#compose').waitFor({ state: 'hidden' });
    assert.equal(dialogs.length, 2);
    assert.equal(await sentCount(), '3');

    // Unchanged: Discard closes without asking.
    await page.getByRole('button', { name: 'New message' }).click();
    await page.getByRole('button', { name: 'Discard' }).click();
    await page.locator('#compose').waitFor({ state: 'hidden' });
    assert.equal(dialogs.length, 2);
  });

  test('on a phone-sized screen the form fills the screen', async () => {
    const phone = await chromium.context.newPage();
    await phone.setViewportSize({ width: 390, height: 800 });
    await signIn(phone, lb.url, BOB);
    await phone.getByRole('button', { name: 'New message' }).click();
    const box = await phone.locator('#compose').boundingBox();
    assert.deepEqual([box.x, box.y, box.width, box.height], [0, 0, 390, 800]);
    assert.equal(await phone.evaluate(() => document.activeElement?.id), 'compose-to');
    await phone.getByRole('button', { name: 'Discard' }).click();
    await phone.locator('#compose').waitFor({ state: 'hidden' });
    await phone.close();
    // That sign-in replaced the browser's session cookie, so the first tab's
    // CSRF token is stale: it forgets it and signs in again.
    await page.evaluate(() => sessionStorage.clear());
    await signIn(page, lb.url, BOB);
  });

  test('a deleted message is not re-delivered after recovery; the others arrive once', async () => {
    await openInbox();
    await openMessage('doomed');
    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    await page.locator(`#message-list button[data-id="${entries.doomed.id}"]`).waitFor({ state: 'detached' });
    await waitFor(() => lb.mailbox(BOB).find((e) => e.id === entries.doomed.id && e.folder === 'Trash'),
      { what: 'the message in Trash' });

    // The server comes back; the recovery drains the mailbox to it.
    await server.open();
    await waitFor(async () => (await page.evaluate(async () => (await (await fetch('/api/v1/status')).json()).state))
      === 'normal', { timeout: 60000, interval: 250, what: 'acme.test back to normal' });
    // The banner follows on its next poll; a reload shows it at once.
    await page.reload();
    await page.locator('#mail-view').waitFor({ state: 'visible' });
    assert.equal(await page.locator('#status-banner').isVisible(), false);

    const st = lb.ctlJson(['continuity', 'status', 'acme.test'])[0];
    assert.equal(st.state, 'normal');
    const got = await server.messages();
    const count = (msgid) => got.filter((m) => header(m, 'Message-ID') === `<${msgid}>`).length;
    assert.equal(count(ORIGINALS.plan.msgid), 1, 'plan delivered once');
    assert.equal(count(ORIGINALS.keep.msgid), 1, 'keep delivered once');
    assert.equal(count(ORIGINALS.doomed.msgid), 0, 'the deleted one never');
    assert.equal(got.length, 2, `only those two: ${got.map((m) => header(m, 'Subject'))}`);
    // Bob's replies went to the internet only, each once.
    assert.equal((await internet.messages()).length, 3);
  });

  test('no request left the server', () => {
    assert.deepEqual(foreign, []);
  });
});
