// mailtext.js — the text work of composing, as pure functions (no DOM, no
// fetch) so that node can test them too: address lists as people type them
// and as the server shows them, the recipients of a reply and a reply-all,
// "Re: "/"Fwd: " subjects, the quoted text of a reply and the header block of
// a forward. The server has the final word on addresses; this only catches
// typing mistakes early and turns "Name <addr>" into the bare address the
// send API takes.

// A light check: something@something, no spaces, brackets or quotes.
const ADDR_RE = /^[^\s@<>()[\],;:"\\]+@[^\s@<>()[\],;:"\\]+$/;

export function isAddress(s) {
  return typeof s === 'string' && s.length <= 320 && ADDR_RE.test(s);
}

/**
 * Splits an address list at commas and semicolons that are outside quotes,
 * angle brackets and comments: 'Ann <a@x>, "Doe, John" <j@y>; b@z'.
 * Returns [{name, address, text}] with the bare address ('' when none could
 * be found) and the entry's text as typed.
 */
export function parseAddressList(input) {
  const out = [];
  if (typeof input !== 'string') return out;
  let cur = '';
  let quoted = false;
  let angle = 0;
  let comment = 0;
  const flush = () => {
    const text = cur.trim();
    cur = '';
    if (text) out.push(parseMailbox(text));
  };
  for (let i = 0; i < input.length; i++) {
    const c = input[i];
    if (quoted) {
      cur += c;
      if (c === '\\' && i + 1 < input.length) cur += input[++i];
      else if (c === '"') quoted = false;
      continue;
    }
    if (c === '"') quoted = true;
    else if (c === '<') angle++;
    else if (c === '>' && angle > 0) angle--;
    else if (c === '(') comment++;
    else if (c === ')' && comment > 0) comment--;
    else if ((c === ',' || c === ';' || c === '\n') && angle === 0 && comment === 0) {
      flush();
      continue;
    }
    cur += c;
  }
  flush();
  return out;
}

function unquote(name) {
  const n = name.trim();
  if (n.length >= 2 && n.startsWith('"') && n.endsWith('"')) return n.slice(1, -1).replace(/\\(.)/g, '$1');
  return n;
}

function parseMailbox(text) {
  const lt = text.lastIndexOf('<');
  const gt = text.lastIndexOf('>');
  if (lt >= 0 && gt > lt) {
    return { name: unquote(text.slice(0, lt)), address: text.slice(lt + 1, gt).trim(), text };
  }
  // A bare address, perhaps with a trailing "(comment)".
  const bare = text.replace(/\([^)]*\)/g, '').trim();
  return { name: '', address: bare, text };
}

/**
 * The bare addresses of a typed list, or the first entry that is not an
 * address. Returns {addresses: [...]} or {bad: 'text as typed'}.
 */
export function addressesOf(input) {
  const addresses = [];
  for (const m of parseAddressList(input)) {
    if (!isAddress(m.address)) return { bad: m.text };
    addresses.push(m.address);
  }
  return { addresses };
}

/** "Name <addr>" (the name quoted when it needs to be), or the bare address. */
export function formatMailbox({ name, address }) {
  if (!name) return address;
  const safe = /^[\p{L}\p{N} !#$%&'*+\-/=?^_`{|}~.]+$/u.test(name) ? name : `"${name.replace(/(["\\])/g, '\\$1')}"`;
  return `${safe} <${address}>`;
}

const lower = (a) => a.toLowerCase();

/**
 * The To and Cc of a reply to msg (the message view of GET /api/v1/messages/ID)
 * by a user whose own addresses are `own` (address and aliases). A reply goes
 * to Reply-To, else From; when the user wrote the original (a message in
 * Sent), to its To. A reply-all adds the original's To and Cc, never the
 * user's own addresses and nobody twice. Lists are of "Name <addr>" strings.
 */
export function replyRecipients(msg, own, all) {
  const h = msg.headers || {};
  const mine = new Set(own.map(lower));
  const seen = new Set();
  const take = (list) => {
    const out = [];
    for (const m of list) {
      const a = lower(m.address || '');
      if (!isAddress(m.address) || mine.has(a) || seen.has(a)) continue;
      seen.add(a);
      out.push(formatMailbox(m));
    }
    return out;
  };
  const from = parseAddressList(h.from || msg.from || msg.envelope_from || '');
  const replyTo = parseAddressList(h.reply_to || '');
  const origTo = parseAddressList(h.to || '');
  const origCc = parseAddressList(h.cc || '');
  const wroteIt = from.length > 0 && from.every((m) => mine.has(lower(m.address || '')));

  let to;
  if (wroteIt) to = take(origTo);
  else to = take(replyTo.length ? replyTo : from);
  if (!all) return { to, cc: [] };
  if (!wroteIt) to = to.concat(take(origTo));
  const cc = take(origCc);
  return { to, cc };
}

/**
 * Which of the user's addresses a reply should come from: the one the
 * original was addressed to (To, Cc or the envelope), else the first.
 */
export function replyFrom(msg, own) {
  const h = msg.headers || {};
  const seenAddrs = new Set([...parseAddressList(h.to || ''), ...parseAddressList(h.cc || '')]
    .map((m) => lower(m.address || '')));
  for (const a of String(msg.envelope_to || '').split(/[\s,]+/)) if (a) seenAddrs.add(lower(a));
  return own.find((a) => seenAddrs.has(lower(a))) || own[0];
}

const RE_PREFIX = /^\s*(re|aw|sv|antw)\s*(\[\d+\])?\s*:/i;
const FWD_PREFIX = /^\s*(fwd?|fw|wg|tr)\s*:/i;

/** "Re: subject", unless it starts so already. */
export function replySubject(subject) {
  const s = (subject || '').trim();
  return RE_PREFIX.test(s) ? s : `Re: ${s}`;
}

/** "Fwd: subject", unless it starts so already. */
export function forwardSubject(subject) {
  const s = (subject || '').trim();
  return FWD_PREFIX.test(s) ? s : `Fwd: ${s}`;
}

/** A date for people: the Date header's moment in the reader's locale, or the text as it came. */
export function humanDate(value) {
  if (!value) return '';
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/** The original's text (its plain part; the server derives one from HTML-only mail). */
function originalText(msg) {
  return typeof msg.text === 'string' ? msg.text.replace(/\r\n/g, '\n') : '';
}

function senderName(msg) {
  const h = msg.headers || {};
  const from = parseAddressList(h.from || msg.from || msg.envelope_from || '')[0];
  if (!from) return 'someone';
  return from.name || from.address || from.text;
}

/** The body of a reply: two empty lines to write in, then "On DATE, NAME wrote:" and the quote. */
export function replyBody(msg) {
  const h = msg.headers || {};
  const text = originalText(msg).replace(/\n+$/, '');
  const quoted = text === '' ? '>' : text.split('\n').map((l) => (l.startsWith('>') ? `>${l}` : `> ${l}`)).join('\n');
  return `\n\nOn ${humanDate(h.date || msg.date)}, ${senderName(msg)} wrote:\n${quoted}\n`;
}

/** The body of a forward: room to write, then the original's headers and its text. */
export function forwardBody(msg) {
  const h = msg.headers || {};
  const lines = ['', '', '---------- Forwarded message ----------'];
  lines.push(`From: ${h.from || msg.from || msg.envelope_from || ''}`);
  lines.push(`Date: ${h.date || humanDate(msg.date)}`);
  lines.push(`Subject: ${h.subject ?? msg.subject ?? ''}`);
  lines.push(`To: ${h.to || msg.to || ''}`);
  if (h.cc) lines.push(`Cc: ${h.cc}`);
  lines.push('', originalText(msg).replace(/\n+$/, ''), '');
  return lines.join('\n');
}

/** 1234567 -> "1.2 MB". */
export function humanSize(n) {
  if (!Number.isFinite(n) || n < 0) return '';
  if (n < 1024) return `${n} bytes`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(n < 10 * 1024 ? 1 : 0)} KB`;
  return `${(n / (1024 * 1024)).toFixed(1)} MB`;
}
