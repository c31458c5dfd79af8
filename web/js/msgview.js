// msgview.js — showing one message's content, shared by the mailbox's reading
// pane (mailbox.js), the Archive's (archive.js) and the control panel's
// (admin/admin.js): the body, the attachment links, the "remote images were
// blocked" note and dates for people. All text from mail is put in with
// textContent; an HTML body (already sanitised by the server) goes into an
// <iframe sandbox> with no allow-scripts and no allow-same-origin, through
// srcdoc, so whatever the sanitiser might have missed runs nothing and
// cannot reach the page.

import { ApiError } from './api.js';
import { humanSize } from './mailtext.js';

/** An ISO 8601 time in the reader's locale (the text as it came when it is not a date). */
export function fmtDate(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

/** The message's text when the server gives neither "text" nor "html": the
 * body of the raw message (rawUrl), shown as plain text. */
export async function rawBodyText(rawUrl) {
  const resp = await fetch(rawUrl, { credentials: 'same-origin', cache: 'no-store' });
  if (!resp.ok) throw new ApiError(resp.status, `HTTP ${resp.status}`);
  const raw = await resp.text();
  const cut = raw.search(/\r?\n\r?\n/);
  return cut < 0 ? '' : raw.slice(cut).replace(/^\s+/, '');
}

/** Fills container with msg's body: the sanitised HTML in a sandboxed frame,
 * else the plain text (or fallbackText). */
export function renderBody(container, msg, fallbackText) {
  container.replaceChildren();
  if (typeof msg.html === 'string' && msg.html) {
    const frame = document.createElement('iframe');
    frame.setAttribute('sandbox', '');
    frame.setAttribute('referrerpolicy', 'no-referrer');
    frame.title = 'Message content';
    frame.className = 'html-body';
    frame.srcdoc = msg.html;
    container.append(frame);
  } else {
    const pre = document.createElement('pre');
    pre.className = 'text-body';
    pre.textContent = typeof msg.text === 'string' ? msg.text : (fallbackText ?? '');
    container.append(pre);
  }
}

/** Lists msg's attachments in ul as download links under base (…/ID); the
 * section is hidden when there are none. Downloads go through the server,
 * which serves active types (HTML, SVG, scripts) as opaque bytes with a safe
 * Content-Disposition. */
export function renderAttachments(section, ul, msg, base) {
  ul.replaceChildren();
  const list = Array.isArray(msg.attachments) ? msg.attachments : [];
  for (const a of list) {
    const li = document.createElement('li');
    const link = document.createElement('a');
    link.href = `${base}/attachments/${a.n}`;
    link.textContent = a.filename || `attachment-${a.n}`;
    link.setAttribute('download', a.filename || `attachment-${a.n}`);
    const size = document.createElement('span');
    size.className = 'size';
    size.textContent = `${a.content_type || ''}, ${humanSize(a.size)}`;
    li.append(link, size);
    ul.append(li);
  }
  section.hidden = list.length === 0;
}

/** The server blocks remote images (tracking pixels) unless asked with
 * ?images=1: the note that says how many, hidden when none or once loaded. */
export function renderImagesNote(note, textEl, msg, loaded) {
  const n = Number(msg.blocked_remote_images) || 0;
  note.hidden = loaded || n === 0;
  textEl.textContent = `${n} remote image${n === 1 ? ' was' : 's were'} blocked to protect your privacy.`;
}

/** Archive search parameters from a filter form's values: words, sender,
 * recipient, earliest and latest date (YYYY-MM-DD, both days included), with
 * attachment.
 * Returns {params: URLSearchParams} or {error: text}. */
export function archiveParams({ q, from, to, after, before, attachment }) {
  const p = new URLSearchParams();
  if (q) p.set('q', q);
  if (from) p.set('from', from);
  if (to) p.set('to', to);
  if (after) p.set('after', after);
  if (before) {
    // The latest date includes that day; the API's before is exclusive.
    const d = new Date(`${before}T00:00:00Z`);
    if (Number.isNaN(d.getTime())) return { error: 'The latest date is not a date.' };
    d.setUTCDate(d.getUTCDate() + 1);
    p.set('before', d.toISOString().slice(0, 10));
  }
  if (after && before && after > before) return { error: 'The earliest date is after the latest date.' };
  if (attachment) p.set('has_attachment', 'true');
  return { params: p };
}
