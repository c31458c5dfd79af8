// mailbox.js — the logged-in webmail: folders with unread counts, the message
// list (paging, search), the reading pane and its actions (read/unread, flag,
// move, delete, reply, reply all, forward; compose.js writes the message),
// its attachments and the "load remote images" choice, the banner that says
// whether the domain's own server is down or recovering, the switch to the
// Archive (archive.js), and the keyboard shortcuts. The content itself is
// shown by msgview.js (text with textContent, HTML in a sandboxed iframe).

import { api, ApiError } from './api.js';
import { closeArchive, isArchiveOpen, openArchive, stopArchive } from './archive.js';
import { closeCompose, isComposeOpen, openCompose } from './compose.js';
import {
  fmtDate, rawBodyText, renderAttachments, renderBody, renderImagesNote,
} from './msgview.js';
import { isTyping } from './ui.js';

const $ = (id) => document.getElementById(id);
const FOLDERS = ['INBOX', 'Sent', 'Trash'];
const PAGE = 50;
const STATUS_POLL_MS = 60000;

const state = {
  folder: 'INBOX',
  offset: 0,
  total: 0,
  q: '',
  current: null, // the open message (its detail JSON)
  me: null,      // GET /api/v1/me: the user's address, name and aliases
  statusTimer: null,
  onSessionEnd: null,
  wired: false,
};

// A 401 means the session ended (expired, logged out elsewhere, suspended).
function handle(e) {
  if (e instanceof ApiError && e.status === 401) {
    state.onSessionEnd?.();
    return;
  }
  const err = $('reader-error');
  err.textContent = e instanceof Error ? e.message : String(e);
  err.hidden = false;
  $('reader').hidden = false;
}

// ------------------------------------------------------------------ status banner

async function loadStatus() {
  const banner = $('status-banner');
  let st;
  try {
    st = await api('GET', '/api/v1/status');
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) handle(e);
    return;
  }
  banner.classList.remove('outage', 'recovering');
  if (st.state === 'outage') {
    banner.textContent = `The mail server of ${st.domain} is down since ${fmtDate(st.since)}. ` +
      'Your mail is kept here and delivered to it once it is back.';
    banner.classList.add('outage');
    banner.hidden = false;
  } else if (st.state === 'recovering') {
    banner.textContent = `The mail server of ${st.domain} is back since ${fmtDate(st.since)}; ` +
      'the mail kept here is being delivered to it.';
    banner.classList.add('recovering');
    banner.hidden = false;
  } else {
    banner.textContent = '';
    banner.hidden = true;
  }
}

// ------------------------------------------------------------------ folders

async function loadFolders() {
  const folders = await api('GET', '/api/v1/folders');
  const ul = $('folder-list');
  ul.replaceChildren();
  for (const f of folders) {
    const li = document.createElement('li');
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'folder';
    b.dataset.folder = f.name;
    const name = document.createElement('span');
    name.textContent = f.name === 'INBOX' ? 'Inbox' : f.name;
    b.append(name);
    // Sent counts what was sent (nothing there is unread); the others count unread mail.
    const sent = f.name === 'Sent';
    const n = sent ? f.total : f.unread;
    if (n > 0) {
      const count = document.createElement('span');
      count.className = sent ? 'count total' : 'count';
      count.textContent = String(n);
      b.append(count);
    }
    const what = sent ? `${n} message${n === 1 ? '' : 's'}` : `${n} unread`;
    b.setAttribute('aria-label', n > 0 ? `${name.textContent}, ${what}` : name.textContent);
    if (f.name === state.folder && !isArchiveOpen()) b.setAttribute('aria-current', 'true');
    b.addEventListener('click', () => openFolder(f.name));
    li.append(b);
    ul.append(li);
  }
}

async function openFolder(name) {
  state.folder = name;
  state.offset = 0;
  closeReader();
  closeArchive();
  $('message-pane').hidden = false;
  $('archive-open').removeAttribute('aria-current');
  try {
    await Promise.all([loadFolders(), loadList()]);
  } catch (e) {
    handle(e);
  }
}

// ------------------------------------------------------------------ message list

async function loadList() {
  const params = new URLSearchParams({ folder: state.folder, offset: String(state.offset), limit: String(PAGE) });
  if (state.q) params.set('q', state.q);
  const r = await api('GET', `/api/v1/messages?${params}`);
  state.total = r.total;
  const ul = $('message-list');
  ul.replaceChildren();
  for (const m of r.messages) {
    const li = document.createElement('li');
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'message' + (m.seen ? '' : ' unread') + (m.flagged ? ' flagged' : '');
    b.dataset.id = String(m.id);
    if (state.current && state.current.id === m.id) b.setAttribute('aria-current', 'true');
    const from = document.createElement('span');
    from.className = 'from';
    from.textContent = m.from || '(no sender)';
    const subject = document.createElement('span');
    subject.className = 'subject';
    subject.textContent = m.subject || '(no subject)';
    const date = document.createElement('time');
    date.className = 'date';
    date.dateTime = m.date;
    date.textContent = fmtDate(m.date);
    b.append(from, subject, date);
    if (m.flagged) {
      const flag = document.createElement('span');
      flag.className = 'flag';
      flag.textContent = '⚑';
      flag.setAttribute('aria-label', 'flagged');
      b.append(flag);
    }
    if (!m.seen) b.setAttribute('aria-description', 'unread');
    b.addEventListener('click', () => openMessage(m.id));
    li.append(b);
    ul.append(li);
  }
  const first = r.total === 0 ? 0 : state.offset + 1;
  const last = state.offset + r.messages.length;
  const where = state.folder === 'INBOX' ? 'Inbox' : state.folder;
  $('list-info').textContent = r.total === 0
    ? (state.q ? `No messages in ${where} match “${state.q}”.` : `${where} is empty.`)
    : `${where}: ${first}–${last} of ${r.total}${state.q ? ` matching “${state.q}”` : ''}`;
  $('page-prev').disabled = state.offset === 0;
  $('page-next').disabled = last >= r.total;
}

async function refresh() {
  await Promise.all([loadFolders(), loadList()]);
}

// ------------------------------------------------------------------ reading pane

function closeReader() {
  state.current = null;
  $('reader').hidden = true;
  $('reader-body').replaceChildren();
  $('reader-attachment-list').replaceChildren();
  $('reader-attachments').hidden = true;
  $('reader-images').hidden = true;
  document.body.classList.remove('reading');
}

const messageUrl = (id) => `/api/v1/messages/${id}`;

function showBody(msg, fallbackText) {
  renderBody($('reader-body'), msg, fallbackText);
}

function showAttachments(msg) {
  renderAttachments($('reader-attachments'), $('reader-attachment-list'), msg, messageUrl(msg.id));
}

// The server blocks remote images (tracking pixels) unless asked with
// ?images=1: loadImages asks, for the open message only.
function showImagesNote(msg, loaded) {
  renderImagesNote($('reader-images'), $('reader-images-text'), msg, loaded);
}

async function loadImages() {
  const msg = state.current;
  if (!msg) return;
  try {
    const withImages = await api('GET', `/api/v1/messages/${msg.id}?images=1`);
    if (state.current?.id !== msg.id) return;
    state.current = { ...msg, html: withImages.html };
    showBody(state.current);
    showImagesNote(state.current, true);
  } catch (e) {
    handle(e);
  }
}

function showActions(msg) {
  $('act-seen').textContent = msg.seen ? 'Mark unread' : 'Mark read';
  const flag = $('act-flag');
  flag.textContent = msg.flagged ? 'Unflag' : 'Flag';
  flag.setAttribute('aria-pressed', msg.flagged ? 'true' : 'false');
  const sel = $('act-move-to');
  sel.replaceChildren();
  for (const f of FOLDERS) {
    if (f === msg.folder) continue;
    const o = document.createElement('option');
    o.value = f;
    o.textContent = f === 'INBOX' ? 'Inbox' : f;
    sel.append(o);
  }
  $('act-delete').textContent = msg.folder === 'Trash' ? 'Delete for good' : 'Delete';
}

async function openMessage(id) {
  $('reader-error').hidden = true;
  try {
    let msg = await api('GET', `/api/v1/messages/${id}`);
    if (!msg.seen) msg = { ...msg, ...(await api('PATCH', `/api/v1/messages/${id}`, { seen: true })) };
    let fallback = null;
    if (typeof msg.text !== 'string' && typeof msg.html !== 'string') {
      fallback = await rawBodyText(`${messageUrl(id)}/raw`);
    }
    state.current = msg;
    $('reader-subject').textContent = msg.subject || '(no subject)';
    $('reader-from').textContent = msg.from || msg.envelope_from || '';
    $('reader-to').textContent = msg.to || msg.envelope_to || '';
    $('reader-date').textContent = fmtDate(msg.date);
    showActions(msg);
    showAttachments(msg);
    showImagesNote(msg, false);
    showBody(msg, fallback);
    $('reader').hidden = false;
    document.body.classList.add('reading');
    if (!isComposeOpen()) $('reader').focus();
    await refresh();
  } catch (e) {
    handle(e);
  }
}

async function change(patch) {
  const msg = state.current;
  if (!msg) return;
  $('reader-error').hidden = true;
  try {
    const updated = await api('PATCH', `/api/v1/messages/${msg.id}`, patch);
    state.current = { ...msg, ...updated };
    if (patch.folder) {
      closeReader();
    } else {
      showActions(state.current);
    }
    await refresh();
  } catch (e) {
    handle(e);
  }
}

async function remove() {
  const msg = state.current;
  if (!msg) return;
  if (msg.folder === 'Trash' && !window.confirm('Delete this message for good?')) return;
  try {
    await api('DELETE', `/api/v1/messages/${msg.id}`);
    closeReader();
    await refresh();
    $('message-list').querySelector('button')?.focus();
  } catch (e) {
    handle(e);
  }
}

// ------------------------------------------------------------------ the archive

// The Archive takes the message list's place (archive.js runs it); the
// folders stay, none of them current.
async function showArchive() {
  closeReader();
  $('message-pane').hidden = true;
  $('archive-open').setAttribute('aria-current', 'true');
  // At once, not when the folders' counts come back: no folder is current now.
  for (const b of $('folder-list').querySelectorAll('[aria-current]')) b.removeAttribute('aria-current');
  try {
    await Promise.all([loadFolders(), openArchive({
      onSessionEnd: () => state.onSessionEnd?.(),
      // A copy went into the INBOX: its unread count changes.
      onReleased: () => loadFolders().catch(handle),
    })]);
  } catch (e) {
    handle(e);
  }
}

// ------------------------------------------------------------------ writing

function compose(mode) {
  if (!state.me) return;
  const msg = mode === 'new' ? null : state.current;
  if (mode !== 'new' && !msg) return;
  openCompose({
    mode,
    msg,
    me: state.me,
    onSessionEnd: () => state.onSessionEnd?.(),
    // The Sent folder's count (and the list, when it is the one shown) change.
    onSent: () => refresh().catch(handle),
  });
}

// Single keys, as in other webmails: c new, r reply, a reply all, f forward;
// Escape closes what is open (the form asks first if something was written).
function onKey(ev) {
  if (document.querySelector('dialog[open]') || $('mail-view').hidden) return;
  if (ev.key === 'Escape') {
    if (isComposeOpen()) closeCompose();
    else if (!$('reader').hidden) $('reader-back').click();
    return;
  }
  if (isTyping(ev) || isComposeOpen()) return;
  const reading = !$('reader').hidden && state.current;
  switch (ev.key) {
    case 'c':
      compose('new');
      break;
    case 'r':
      if (reading) compose('reply');
      break;
    case 'a':
      if (reading) compose('reply-all');
      break;
    case 'f':
      if (reading) compose('forward');
      break;
    default:
      return;
  }
  ev.preventDefault();
}

// ------------------------------------------------------------------ wiring

function wire() {
  if (state.wired) return;
  state.wired = true;
  $('search-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    state.q = $('search-q').value.trim();
    state.offset = 0;
    loadList().catch(handle);
  });
  $('page-prev').addEventListener('click', () => {
    state.offset = Math.max(0, state.offset - PAGE);
    loadList().catch(handle);
  });
  $('page-next').addEventListener('click', () => {
    state.offset += PAGE;
    loadList().catch(handle);
  });
  $('act-seen').addEventListener('click', () => change({ seen: !state.current?.seen }));
  $('act-flag').addEventListener('click', () => change({ flagged: !state.current?.flagged }));
  $('act-move').addEventListener('click', () => change({ folder: $('act-move-to').value }));
  $('act-delete').addEventListener('click', remove);
  $('reader-back').addEventListener('click', () => {
    const id = state.current?.id;
    closeReader();
    $('message-list').querySelector(`button[data-id="${id}"]`)?.focus();
  });
  $('reader-images-load').addEventListener('click', loadImages);
  $('act-reply').addEventListener('click', () => compose('reply'));
  $('act-reply-all').addEventListener('click', () => compose('reply-all'));
  $('act-forward').addEventListener('click', () => compose('forward'));
  $('compose-new').addEventListener('click', () => compose('new'));
  $('archive-open').addEventListener('click', showArchive);
  document.addEventListener('keydown', onKey);
}

export async function startMailbox(me, onSessionEnd) {
  state.onSessionEnd = onSessionEnd;
  state.me = me;
  state.folder = 'INBOX';
  state.offset = 0;
  state.q = '';
  $('search-q').value = '';
  closeReader();
  stopArchive();
  $('message-pane').hidden = false;
  $('archive-open').removeAttribute('aria-current');
  // Admins and operators also have the control panel (its API answers 403 to users).
  $('admin-link').hidden = me.role !== 'admin' && me.role !== 'operator';
  wire();
  await Promise.all([loadStatus(), refresh()]);
  clearInterval(state.statusTimer);
  state.statusTimer = setInterval(loadStatus, STATUS_POLL_MS);
}

export function stopMailbox() {
  clearInterval(state.statusTimer);
  state.statusTimer = null;
  closeCompose(true);
  closeReader();
  stopArchive();
  state.me = null;
}
