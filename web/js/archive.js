// archive.js — the webmail's "Archive" (issue 5, item 7): the user's mail of
// the last 90 days as the server archived it, including what was delivered
// to the domain's own server before an outage, which the continuity mailbox
// never saw. It takes the message list's place (mailbox.js switches): a
// search form (words, from, to, a date range, with attachment) over
// GET /api/v1/archive, results newest first with paging, and a reading pane
// for one entry (GET /api/v1/archive/ID, shown by msgview.js like mail) with
// "Release to my mailbox" (POST /api/v1/archive/ID/release without "to": the
// server releases to the user's own address: into the continuity INBOX
// while the domain is in outage, else re-delivered to the domain's server)
// and the raw message as a download.

import { api, ApiError } from './api.js';
import {
  archiveParams, fmtDate, rawBodyText, renderAttachments, renderBody, renderImagesNote,
} from './msgview.js';
import { isTyping } from './ui.js';

const $ = (id) => document.getElementById(id);
const PAGE = 50;

const state = {
  open: false,
  wired: false,
  params: new URLSearchParams(),
  offset: 0,
  total: 0,
  current: null,  // the open entry (its detail JSON)
  releasing: false,
  opts: {},       // onSessionEnd, onReleased (from mailbox.js)
};

const entryUrl = (id) => `/api/v1/archive/${id}`;

function setText(id, text) {
  const el = $(id);
  el.textContent = text || '';
  el.hidden = !text;
}

// A 401 ends the session; anything else is said where it happened.
function fail(e, where) {
  if (e instanceof ApiError && e.status === 401) {
    state.opts.onSessionEnd?.();
    return;
  }
  setText(where, e instanceof Error ? e.message : String(e));
}

// ------------------------------------------------------------------ results

function row(m) {
  const li = document.createElement('li');
  const b = document.createElement('button');
  b.type = 'button';
  b.className = 'message';
  b.dataset.id = String(m.id);
  if (state.current && state.current.id === m.id) b.setAttribute('aria-current', 'true');
  const who = document.createElement('span');
  who.className = 'from';
  // Mail the user sent is listed by its recipients, as in a Sent folder.
  who.textContent = m.direction === 'outbound'
    ? `To: ${(m.to || []).join(', ') || '(no recipient)'}`
    : (m.from || '(no sender)');
  const subject = document.createElement('span');
  subject.className = 'subject';
  subject.textContent = m.subject || '(no subject)';
  const date = document.createElement('time');
  date.className = 'date';
  date.dateTime = m.date;
  date.textContent = fmtDate(m.date);
  b.append(who, subject, date);
  if (m.has_attachment) {
    const clip = document.createElement('span');
    clip.className = 'flag clip';
    clip.textContent = '📎';
    clip.setAttribute('aria-label', 'with attachment');
    clip.setAttribute('role', 'img');
    b.append(clip);
  }
  b.addEventListener('click', () => openEntry(m.id));
  li.append(b);
  return li;
}

async function loadResults() {
  const params = new URLSearchParams(state.params);
  params.set('offset', String(state.offset));
  params.set('limit', String(PAGE));
  const r = await api('GET', `/api/v1/archive?${params}`);
  state.total = r.total;
  $('archive-list').replaceChildren(...r.messages.map(row));
  const filtered = [...state.params.keys()].length > 0;
  const first = r.total === 0 ? 0 : state.offset + 1;
  const last = state.offset + r.messages.length;
  $('archive-info').textContent = r.total === 0
    ? (filtered ? 'Nothing in the archive matches.' : 'The archive is empty.')
    : `Archive: ${first}–${last} of ${r.total}${r.total_exact === false ? '+' : ''}${filtered ? ' matching' : ''}`;
  $('archive-prev').disabled = state.offset === 0;
  $('archive-next').disabled = last >= r.total;
}

async function search() {
  const f = {
    q: $('archive-q').value.trim(),
    from: $('archive-from').value.trim(),
    to: $('archive-to').value.trim(),
    after: $('archive-after').value,
    before: $('archive-before').value,
    attachment: $('archive-attachment').checked,
  };
  const { params, error } = archiveParams(f);
  setText('archive-error', error);
  if (error) return;
  state.params = params;
  state.offset = 0;
  await loadResults();
}

// ------------------------------------------------------------------ one entry

function closeEntry() {
  state.current = null;
  $('archive-reader').hidden = true;
  $('archive-body').replaceChildren();
  $('archive-attachment-list').replaceChildren();
  $('archive-release-status').textContent = '';
  setText('archive-reader-error', '');
  document.body.classList.remove('reading');
  for (const b of $('archive-list').querySelectorAll('[aria-current]')) b.removeAttribute('aria-current');
}

function showEntry(msg, fallback) {
  const h = msg.headers || {};
  $('archive-subject').textContent = msg.subject || '(no subject)';
  $('archive-from-hdr').textContent = h.from || msg.from || msg.envelope_from || '';
  $('archive-to-hdr').textContent = h.to || (msg.to || []).join(', ');
  $('archive-date').textContent = fmtDate(msg.date);
  const raw = $('archive-raw');
  raw.href = `${entryUrl(msg.id)}/raw`;
  raw.setAttribute('download', `archive-${msg.id}.eml`);
  renderAttachments($('archive-attachments'), $('archive-attachment-list'), msg, entryUrl(msg.id));
  renderImagesNote($('archive-images'), $('archive-images-text'), msg, false);
  renderBody($('archive-body'), msg, fallback);
}

async function openEntry(id) {
  setText('archive-reader-error', '');
  $('archive-release-status').textContent = '';
  try {
    const msg = await api('GET', entryUrl(id));
    let fallback = null;
    if (typeof msg.text !== 'string' && typeof msg.html !== 'string') {
      fallback = await rawBodyText(`${entryUrl(id)}/raw`);
    }
    state.current = msg;
    showEntry(msg, fallback);
    $('archive-reader').hidden = false;
    document.body.classList.add('reading');
    for (const b of $('archive-list').querySelectorAll('button[data-id]')) {
      if (b.dataset.id === String(id)) b.setAttribute('aria-current', 'true');
      else b.removeAttribute('aria-current');
    }
    $('archive-reader').focus();
  } catch (e) {
    fail(e, 'archive-error');
  }
}

async function loadImages() {
  const msg = state.current;
  if (!msg) return;
  try {
    const withImages = await api('GET', `${entryUrl(msg.id)}?images=1`);
    if (state.current?.id !== msg.id) return;
    state.current = { ...msg, html: withImages.html };
    renderBody($('archive-body'), state.current);
    renderImagesNote($('archive-images'), $('archive-images-text'), state.current, true);
  } catch (e) {
    fail(e, 'archive-reader-error');
  }
}

// What a release did, in the user's words.
function releasedText(r) {
  const parts = [];
  if (r.to_mailbox > 0) parts.push('a copy is in your INBOX');
  if (r.queued > 0) parts.push('re-delivered to your mail server');
  return parts.length ? `Released: ${parts.join('; ')}` : 'Released.';
}

async function release() {
  const msg = state.current;
  if (!msg || state.releasing) return;
  state.releasing = true;
  const button = $('archive-release');
  button.disabled = true;
  setText('archive-reader-error', '');
  $('archive-release-status').textContent = '';
  try {
    const r = await api('POST', `${entryUrl(msg.id)}/release`, {});
    if (state.current?.id === msg.id) $('archive-release-status').textContent = releasedText(r);
    if (r.to_mailbox > 0) state.opts.onReleased?.();
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) state.opts.onSessionEnd?.();
    else setText('archive-reader-error', `The message was not released: ${e.message}.`);
  } finally {
    state.releasing = false;
    button.disabled = false;
  }
}

// ------------------------------------------------------------------ wiring

// Escape closes the open entry, unless a message is being written (then it
// is the compose form's: this runs in the capture phase, before mailbox.js
// closes the form, so one Escape never closes both) or the key is typed
// into the search form.
function onKey(ev) {
  if (!state.open || ev.key !== 'Escape' || document.querySelector('dialog[open]')) return;
  if (document.body.classList.contains('composing') || $('archive-reader').hidden) return;
  if (isTyping(ev) && ev.target.closest?.('#archive-form')) return;
  $('archive-back').click();
}

function wire() {
  if (state.wired) return;
  state.wired = true;
  $('archive-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    closeEntry();
    search().catch((e) => fail(e, 'archive-error'));
  });
  $('archive-clear').addEventListener('click', () => {
    $('archive-form').reset();
    closeEntry();
    search().catch((e) => fail(e, 'archive-error'));
    $('archive-q').focus();
  });
  $('archive-prev').addEventListener('click', () => {
    state.offset = Math.max(0, state.offset - PAGE);
    loadResults().catch((e) => fail(e, 'archive-error'));
  });
  $('archive-next').addEventListener('click', () => {
    state.offset += PAGE;
    loadResults().catch((e) => fail(e, 'archive-error'));
  });
  $('archive-back').addEventListener('click', () => {
    const id = state.current?.id;
    closeEntry();
    $('archive-list').querySelector(`button[data-id="${id}"]`)?.focus();
  });
  $('archive-release').addEventListener('click', release);
  $('archive-images-load').addEventListener('click', loadImages);
  document.addEventListener('keydown', onKey, { capture: true });
}

/** Shows the Archive (in the message list's place) and lists what the form
 * asks for. opts: onSessionEnd() on a 401, onReleased() after a copy went
 * into the mailbox. */
export async function openArchive(opts) {
  state.opts = opts || {};
  wire();
  state.open = true;
  closeEntry();
  setText('archive-error', '');
  $('archive').hidden = false;
  $('archive-q').focus();
  try {
    await search();
  } catch (e) {
    fail(e, 'archive-error');
  }
}

export function isArchiveOpen() {
  return state.open;
}

/** Hides the Archive (the form keeps what was typed). */
export function closeArchive() {
  state.open = false;
  closeEntry();
  $('archive').hidden = true;
}

/** Hides the Archive and forgets the search (sign-out, another user). */
export function stopArchive() {
  closeArchive();
  $('archive-form').reset();
  $('archive-list').replaceChildren();
  $('archive-info').textContent = '';
  state.params = new URLSearchParams();
  state.offset = 0;
}
