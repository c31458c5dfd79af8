// compose.js — writing a message: new, reply, reply all and forward. The
// form (index.html #compose) takes the reading pane's place on a wide screen
// and the whole screen on a phone. Addresses are checked lightly here (the
// server has the final word), files are read with FileReader into base64,
// a forward carries the original's attachments (fetched from the server), a
// reply sets in_reply_to (the server writes In-Reply-To and References).
// Send is POST /api/v1/send; the server's refusal is shown in the form's
// alert region. Escape or Discard closes the form, after asking when
// something was written.

import { api, ApiError } from './api.js';
import {
  addressesOf, forwardBody, forwardSubject, humanSize, replyBody, replyFrom, replyRecipients, replySubject,
} from './mailtext.js';
import { toast } from './ui.js';

const $ = (id) => document.getElementById(id);

const state = {
  open: false,
  wired: false,
  sending: false,
  inReplyTo: null,
  references: null,
  attachments: [], // {key, filename, content_type, size, data: Promise<string>}
  nextKey: 1,
  initial: '',     // the form as it was opened, to know whether anything changed
  returnFocus: null,
  onSent: null,
  onSessionEnd: null,
};

const TITLES = { new: 'New message', reply: 'Reply', 'reply-all': 'Reply all', forward: 'Forward' };

// ------------------------------------------------------------------ attachments

function readAsBase64(blob) {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => {
      const url = String(r.result);
      resolve(url.slice(url.indexOf(',') + 1));
    };
    r.onerror = () => reject(r.error || new Error('cannot read the file'));
    r.readAsDataURL(blob);
  });
}

function addAttachment(filename, contentType, size, data) {
  const a = { key: state.nextKey++, filename, content_type: contentType || 'application/octet-stream', size, data };
  a.data.catch(() => {}); // reported at Send; no unhandled rejection meanwhile
  state.attachments.push(a);
  renderAttachments();
}

function addFiles(files) {
  for (const f of files) addAttachment(f.name, f.type, f.size, readAsBase64(f));
}

// The original's attachment N, as the server serves it (the type from the
// message's own list: the download may say application/octet-stream).
async function fetchAttachment(msgId, n) {
  const resp = await fetch(`/api/v1/messages/${msgId}/attachments/${n}`, { credentials: 'same-origin' });
  if (!resp.ok) throw new ApiError(resp.status, `attachment ${n}: HTTP ${resp.status}`);
  return readAsBase64(await resp.blob());
}

function renderAttachments() {
  const ul = $('compose-attachments');
  ul.replaceChildren();
  for (const a of state.attachments) {
    const li = document.createElement('li');
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = a.filename;
    const size = document.createElement('span');
    size.className = 'size';
    size.textContent = humanSize(a.size);
    const rm = document.createElement('button');
    rm.type = 'button';
    rm.textContent = 'Remove';
    rm.setAttribute('aria-label', `Remove ${a.filename}`);
    rm.addEventListener('click', () => {
      const i = state.attachments.indexOf(a);
      if (i >= 0) state.attachments.splice(i, 1);
      renderAttachments();
      $('compose-files').focus();
    });
    li.append(name, size, rm);
    ul.append(li);
  }
}

// ------------------------------------------------------------------ the form

function snapshot() {
  return JSON.stringify([
    $('compose-from').value, $('compose-to').value, $('compose-cc').value, $('compose-bcc').value,
    $('compose-subject').value, $('compose-body').value, state.attachments.map((a) => a.key),
  ]);
}

function isDirty() {
  return state.open && snapshot() !== state.initial;
}

function showError(text, field) {
  const err = $('compose-error');
  err.textContent = text;
  err.hidden = !text;
  for (const id of ['compose-to', 'compose-cc', 'compose-bcc']) $(id).removeAttribute('aria-invalid');
  if (field) {
    $(field).setAttribute('aria-invalid', 'true');
    $(field).focus();
  }
}

function fillFrom(me, preferred) {
  const sel = $('compose-from');
  sel.replaceChildren();
  const own = [me.email, ...(me.aliases || [])];
  for (const a of own) {
    const o = document.createElement('option');
    o.value = a;
    o.textContent = a === me.email && me.name ? `${me.name} <${a}>` : a;
    sel.append(o);
  }
  sel.value = own.find((a) => a.toLowerCase() === (preferred || '').toLowerCase()) || me.email;
}

export function isComposeOpen() {
  return state.open;
}

/**
 * Opens the form. mode: 'new', 'reply', 'reply-all' or 'forward'; msg: the
 * message view being answered (GET /api/v1/messages/ID); me: GET /api/v1/me.
 * onSent(result) runs after a 202. Returns false when the user chose to keep
 * a message already being written.
 */
export function openCompose({ mode = 'new', msg = null, me, onSent, onSessionEnd }) {
  if (state.open && !closeCompose()) return false;
  wire();
  state.onSent = onSent;
  state.onSessionEnd = onSessionEnd;
  state.returnFocus = document.activeElement;
  state.attachments = [];
  state.inReplyTo = null;
  state.references = null;
  showError('');
  const own = [me.email, ...(me.aliases || [])];
  let to = [];
  let cc = [];
  let subject = '';
  let body = '';
  if (msg && (mode === 'reply' || mode === 'reply-all')) {
    ({ to, cc } = replyRecipients(msg, own, mode === 'reply-all'));
    subject = replySubject(msg.headers?.subject ?? msg.subject);
    body = replyBody(msg);
    state.inReplyTo = msg.headers?.message_id || msg.message_id || null;
    state.references = msg.headers?.references || null;
  } else if (msg && mode === 'forward') {
    subject = forwardSubject(msg.headers?.subject ?? msg.subject);
    body = forwardBody(msg);
    for (const a of msg.attachments || []) {
      addAttachment(a.filename || `attachment-${a.n}`, a.content_type, a.size, fetchAttachment(msg.id, a.n));
    }
  } else {
    mode = 'new';
  }
  fillFrom(me, msg ? replyFrom(msg, own) : me.email);
  $('compose-title').textContent = TITLES[mode];
  $('compose-to').value = to.join(', ');
  $('compose-cc').value = cc.join(', ');
  $('compose-bcc').value = '';
  $('compose-subject').value = subject;
  $('compose-body').value = body;
  $('compose-files').value = '';
  renderAttachments();
  state.open = true;
  state.initial = snapshot();
  $('compose').hidden = false;
  document.body.classList.add('composing');
  if (mode === 'reply' || mode === 'reply-all') {
    const ta = $('compose-body');
    ta.focus();
    ta.setSelectionRange(0, 0);
    ta.scrollTop = 0;
  } else {
    $('compose-to').focus();
  }
  return true;
}

/** Closes the form; asks first when something was written, unless force. True when closed. */
export function closeCompose(force = false) {
  if (!state.open) return true;
  if (!force && isDirty() && !window.confirm('Discard this message?')) return false;
  state.open = false;
  state.attachments = [];
  $('compose').hidden = true;
  document.body.classList.remove('composing');
  $('compose-form').reset();
  renderAttachments();
  showError('');
  const back = state.returnFocus;
  state.returnFocus = null;
  if (back && back.isConnected && !back.closest('[hidden]')) back.focus();
  return true;
}

function recipients(field) {
  const r = addressesOf($(field).value);
  if (r.bad !== undefined) {
    showError(`“${r.bad}” is not an email address.`, field);
    return null;
  }
  return r.addresses;
}

function sendErrorText(e) {
  if (!(e instanceof ApiError)) return `The message was not sent: ${e.message || e}.`;
  if (e.status === 0) return 'The message was not sent: the server cannot be reached.';
  if (e.status === 413) return 'The message was not sent: it is too large.';
  return `The message was not sent: ${e.message}.`;
}

async function send(ev) {
  ev?.preventDefault();
  if (state.sending) return;
  showError('');
  const to = recipients('compose-to');
  if (!to) return;
  const cc = recipients('compose-cc');
  if (!cc) return;
  const bcc = recipients('compose-bcc');
  if (!bcc) return;
  if (to.length + cc.length + bcc.length === 0) {
    showError('Add at least one recipient.', 'compose-to');
    return;
  }
  state.sending = true;
  const button = $('compose-send');
  button.disabled = true;
  $('compose-form').setAttribute('aria-busy', 'true');
  try {
    let attachments;
    try {
      attachments = await Promise.all(state.attachments.map(async (a) => ({
        filename: a.filename, content_type: a.content_type, data_base64: await a.data,
      })));
    } catch (e) {
      showError(`The message was not sent: an attachment could not be read (${e.message || e}).`);
      return;
    }
    const body = {
      from: $('compose-from').value,
      to, cc, bcc,
      subject: $('compose-subject').value,
      text: $('compose-body').value,
      attachments,
    };
    if (state.inReplyTo) body.in_reply_to = state.inReplyTo;
    if (state.inReplyTo && state.references) body.references = state.references;
    const result = await api('POST', '/api/v1/send', body);
    const onSent = state.onSent;
    closeCompose(true);
    toast('Sent');
    await onSent?.(result);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      state.onSessionEnd?.();
      return;
    }
    showError(sendErrorText(e));
  } finally {
    state.sending = false;
    button.disabled = false;
    $('compose-form').removeAttribute('aria-busy');
  }
}

function wire() {
  if (state.wired) return;
  state.wired = true;
  $('compose-form').addEventListener('submit', send);
  $('compose-discard').addEventListener('click', () => closeCompose());
  $('compose-files').addEventListener('change', (ev) => {
    addFiles(ev.target.files);
    ev.target.value = ''; // the same file can be chosen again after a Remove
  });
  $('compose').addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') {
      ev.preventDefault();
      ev.stopPropagation();
      closeCompose();
    } else if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      send();
    }
  });
  for (const id of ['compose-to', 'compose-cc', 'compose-bcc']) {
    $(id).addEventListener('input', () => $(id).removeAttribute('aria-invalid'));
  }
}
