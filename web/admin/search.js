// search.js — the Archive search page (#/archive): the customer's archived
// mail (an operator's: everyone's, or the chosen customer's) searched by
// words, sender, recipient, dates and attachment (GET /api/v1/archive), one
// entry's view (recorded in the audit trail) and the search's mbox export
// (GET /api/v1/archive/export, a plain link: the browser downloads it as the
// server streams it). The markup is in index.html.

import { api } from '/js/api.js';
import { humanSize } from '/js/mailtext.js';
import {
  archiveParams, fmtDate, rawBodyText, renderAttachments, renderBody, renderImagesNote,
} from '/js/msgview.js';
import { asAlert } from './dom.js';
import { fail } from './ctx.js';

const $ = (id) => document.getElementById(id);
const PAGE = 50;

const state = {
  params: new URLSearchParams(),
  offset: 0,
  current: null, // the open archive entry
  loaded: false,
  asked: 0, // searches asked so far; only the last one's answer is shown
};
let searchError;
let entryError;

function cell(text, className) {
  const td = document.createElement('td');
  td.textContent = text ?? '';
  if (className) td.className = className;
  return td;
}

function searchRow(m) {
  const tr = document.createElement('tr');
  const date = document.createElement('td');
  const time = document.createElement('time');
  time.dateTime = m.date;
  time.textContent = fmtDate(m.date);
  date.append(time);
  const subj = document.createElement('td');
  const open = document.createElement('button');
  open.type = 'button';
  open.className = 'linkish';
  open.dataset.id = String(m.id);
  open.textContent = m.subject || '(no subject)';
  open.addEventListener('click', () => openEntry(m.id));
  subj.append(open);
  if (m.has_attachment) {
    const clip = document.createElement('span');
    clip.textContent = ' 📎';
    clip.setAttribute('role', 'img');
    clip.setAttribute('aria-label', 'with attachment');
    subj.append(clip);
  }
  tr.append(date, cell(m.direction), cell(m.from, 'wrap'), cell((m.to || []).join(', '), 'wrap'), subj,
    cell(humanSize(m.size), 'nowrap'));
  return tr;
}

async function loadResults() {
  const params = new URLSearchParams(state.params);
  params.set('offset', String(state.offset));
  params.set('limit', String(PAGE));
  state.asked += 1;
  const asked = state.asked;
  const r = await api('GET', `/api/v1/archive?${params}`);
  if (asked !== state.asked) return; // a newer search was asked meanwhile: its answer counts
  $('search-rows').replaceChildren(...r.messages.map(searchRow));
  $('search-table').hidden = r.messages.length === 0;
  const first = r.total === 0 ? 0 : state.offset + 1;
  const last = state.offset + r.messages.length;
  $('search-info').textContent = r.total === 0 ? 'No archived message matches.'
    : `${first}–${last} of ${r.total}${r.total_exact === false ? '+' : ''}`;
  $('search-prev').disabled = state.offset === 0;
  $('search-next').disabled = last >= r.total;
}

async function search() {
  const { params, error } = archiveParams({
    q: $('search-q').value.trim(),
    from: $('search-from').value.trim(),
    to: $('search-to').value.trim(),
    after: $('search-after').value,
    before: $('search-before').value,
    attachment: $('search-attachment').checked,
  });
  searchError.show(error);
  if (error) return;
  state.params = params;
  state.offset = 0;
  // The export takes the same filters (paging does not apply to it).
  const link = $('export-link');
  const q = params.toString();
  link.href = `/api/v1/archive/export${q ? `?${q}` : ''}`;
  link.setAttribute('download', '');
  await loadResults();
}

function closeEntry() {
  state.current = null;
  $('entry').hidden = true;
  $('entry-body').replaceChildren();
  entryError.clear();
}

async function openEntry(id) {
  searchError.clear();
  try {
    const msg = await api('GET', `/api/v1/archive/${id}`);
    const base = `/api/v1/archive/${id}`;
    let fallback = null;
    if (typeof msg.text !== 'string' && typeof msg.html !== 'string') {
      fallback = await rawBodyText(`${base}/raw`);
    }
    state.current = msg;
    const h = msg.headers || {};
    $('entry-subject').textContent = msg.subject || '(no subject)';
    $('entry-from').textContent = h.from || msg.from || '';
    $('entry-to').textContent = h.to || '';
    const env = msg.participants || {};
    $('entry-envelope').textContent =
      `${msg.direction}: from ${(env.from || []).join(', ') || '<>'} to ${(env.to || []).join(', ')}`;
    $('entry-date').textContent = fmtDate(msg.date);
    $('entry-raw').href = `${base}/raw`;
    $('entry-raw').setAttribute('download', `archive-${id}.eml`);
    renderAttachments($('entry-attachments'), $('entry-attachment-list'), msg, base);
    renderImagesNote($('entry-images'), $('entry-images-text'), msg, false);
    renderBody($('entry-body'), msg, fallback);
    entryError.clear();
    $('entry').hidden = false;
    $('entry').focus();
  } catch (e) {
    fail(e, searchError);
  }
}

async function loadImages() {
  const msg = state.current;
  if (!msg) return;
  try {
    const withImages = await api('GET', `/api/v1/archive/${msg.id}?images=1`);
    if (state.current?.id !== msg.id) return;
    state.current = { ...msg, html: withImages.html };
    renderBody($('entry-body'), state.current);
    renderImagesNote($('entry-images'), $('entry-images-text'), state.current, true);
  } catch (e) {
    fail(e, entryError);
  }
}

export default {
  id: 'archive',
  title: 'Archive search',
  build() {
    searchError = asAlert($('search-error'));
    entryError = asAlert($('entry-error'));
    $('search-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      closeEntry();
      search().catch((e) => fail(e, searchError));
    });
    $('search-clear').addEventListener('click', () => {
      $('search-form').reset();
      closeEntry();
      search().catch((e) => fail(e, searchError));
    });
    $('search-prev').addEventListener('click', () => {
      state.offset = Math.max(0, state.offset - PAGE);
      loadResults().catch((e) => fail(e, searchError));
    });
    $('search-next').addEventListener('click', () => {
      state.offset += PAGE;
      loadResults().catch((e) => fail(e, searchError));
    });
    $('entry-close').addEventListener('click', () => {
      const id = state.current?.id;
      closeEntry();
      $('search-rows').querySelector(`button[data-id="${id}"]`)?.focus();
    });
    $('entry-images-load').addEventListener('click', loadImages);
    document.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape' && !$('entry').hidden && !$('search').hidden) $('entry-close').click();
    });
    return $('search');
  },
  // The first visit lists the newest; later visits keep the search and the open entry.
  show() {
    if (state.loaded) return Promise.resolve();
    state.loaded = true;
    return search().catch((e) => fail(e, searchError));
  },
  // Another customer chosen (operator): the results are of the old one.
  reset() {
    state.loaded = false;
    closeEntry();
  },
};
