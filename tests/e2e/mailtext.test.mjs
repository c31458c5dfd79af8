// mailtext.test.mjs — the webmail's composing helpers (web/js/mailtext.js)
// in node, without a browser: address lists as typed and as the server shows
// them, reply and reply-all recipients, "Re:"/"Fwd:" not doubled, the quoted
// reply and the forward's header block.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  addressesOf, forwardBody, forwardSubject, formatMailbox, humanSize, isAddress, parseAddressList, replyBody,
  replyFrom, replyRecipients, replySubject,
} from '../../web/js/mailtext.js';

test('address lists split at commas outside quotes and brackets', () => {
  const l = parseAddressList('Ann <ann@x.test>, "Doe, John" <john@y.test>; carl@z.test (work),,');
  assert.deepEqual(l.map((m) => [m.name, m.address]), [
    ['Ann', 'ann@x.test'], ['Doe, John', 'john@y.test'], ['', 'carl@z.test']]);
  assert.deepEqual(addressesOf(' a@b.test ,c@d.test '), { addresses: ['a@b.test', 'c@d.test'] });
  assert.deepEqual(addressesOf(''), { addresses: [] });
  assert.deepEqual(addressesOf('a@b.test, not an address'), { bad: 'not an address' });
  assert.deepEqual(addressesOf('Ann <ann@x.test'), { bad: 'Ann <ann@x.test' });
  for (const bad of ['@x', 'a@', 'a b@c', 'a@b@c', '"a"@b', '']) assert.equal(isAddress(bad), false, bad);
  assert.equal(formatMailbox({ name: 'Doe, John', address: 'j@y.test' }), '"Doe, John" <j@y.test>');
  assert.equal(formatMailbox({ name: 'Ann Lee', address: 'a@x.test' }), 'Ann Lee <a@x.test>');
});

const original = {
  id: 7,
  subject: 'Plans',
  headers: {
    from: 'Alice Example <alice@example.org>',
    to: 'Bob <bob@acme.test>, team@acme.test, Carol <carol@example.net>',
    cc: '"Doe, John" <john@example.com>, BOB@acme.test',
    reply_to: '',
    subject: 'Plans',
    date: 'Fri, 27 Nov 2026 22:00:00 +0000',
    message_id: 'orig.1@example.org',
  },
  envelope_to: 'team@acme.test',
  text: 'line one\n> earlier\n\nline three\n',
};
const own = ['bob@acme.test', 'team@acme.test'];

test('reply and reply all: who, from which address, never oneself, nobody twice', () => {
  assert.deepEqual(replyRecipients(original, own, false), { to: ['Alice Example <alice@example.org>'], cc: [] });
  assert.deepEqual(replyRecipients(original, own, true), {
    to: ['Alice Example <alice@example.org>', 'Carol <carol@example.net>'],
    cc: ['"Doe, John" <john@example.com>'],
  });
  const withReplyTo = { ...original, headers: { ...original.headers, reply_to: 'List <list@example.org>' } };
  assert.deepEqual(replyRecipients(withReplyTo, own, false).to, ['List <list@example.org>']);
  // One's own message (in Sent): the reply goes to its recipients again.
  const mine = { headers: { from: 'Bob <bob@acme.test>', to: 'alice@example.org', cc: '' } };
  assert.deepEqual(replyRecipients(mine, own, false).to, ['alice@example.org']);
  assert.equal(replyFrom(original, own), 'bob@acme.test');
  assert.equal(replyFrom({ headers: { to: 'x@y.test' }, envelope_to: 'TEAM@acme.test' }, own), 'team@acme.test');
  assert.equal(replyFrom({ headers: {} }, own), 'bob@acme.test');
});

test('subjects get one prefix', () => {
  assert.equal(replySubject('Plans'), 'Re: Plans');
  assert.equal(replySubject('Re: Plans'), 'Re: Plans');
  assert.equal(replySubject('RE:Plans'), 'RE:Plans');
  assert.equal(replySubject('AW: Plans'), 'AW: Plans');
  assert.equal(replySubject(''), 'Re: ');
  assert.equal(forwardSubject('Plans'), 'Fwd: Plans');
  assert.equal(forwardSubject('Fwd: Plans'), 'Fwd: Plans');
  assert.equal(forwardSubject('FW: Plans'), 'FW: Plans');
  assert.equal(forwardSubject('Re: Plans'), 'Fwd: Re: Plans');
});

test('a reply quotes, a forward carries the headers', () => {
  const r = replyBody(original);
  assert.match(r, /^\n\nOn .*2026.*, Alice Example wrote:\n/);
  assert.ok(r.endsWith('> line one\n>> earlier\n> \n> line three\n'), JSON.stringify(r));
  const f = forwardBody(original);
  assert.match(f, /---------- Forwarded message ----------\nFrom: Alice Example <alice@example.org>\n/);
  assert.match(f, /\nDate: Fri, 27 Nov 2026 22:00:00 \+0000\nSubject: Plans\nTo: Bob <bob@acme.test>/);
  assert.match(f, /\nCc: "Doe, John" <john@example.com>, BOB@acme.test\n\nline one\n> earlier\n\nline three\n$/);
  assert.equal(humanSize(512), '512 bytes');
  assert.equal(humanSize(2048), '2.0 KB');
  assert.equal(humanSize(3 * 1024 * 1024), '3.0 MB');
});
