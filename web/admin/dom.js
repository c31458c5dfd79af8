// dom.js — the control panel's small DOM kit: h() builds elements (every
// text from the server goes in as a text node, never as HTML), field() pairs
// a control with its label, and the few formatting helpers the pages share
// (times, counts, states). No state lives here.

let uidCounter = 0;

/** A fresh element id with a readable prefix (labels and aria-* need ids). */
export function uid(prefix) {
  uidCounter += 1;
  return `${prefix}-${uidCounter}`;
}

const PROPS = new Set(['hidden', 'disabled', 'checked', 'required', 'value', 'type', 'name', 'id', 'href',
  'placeholder', 'autocomplete', 'selected', 'multiple', 'rows', 'min', 'max', 'step', 'maxLength', 'tabIndex',
  'spellcheck', 'inputMode', 'readOnly', 'title', 'dateTime', 'htmlFor', 'accept']);

/** h('button', {class: 'primary', onclick: fn, 'aria-label': '...'}, 'text', child, [more]) */
export function h(tag, props, ...children) {
  const el = tag.startsWith('svg:')
    ? document.createElementNS('http://www.w3.org/2000/svg', tag.slice(4))
    : document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.setAttribute('class', v);
    else if (k === 'text') el.textContent = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'for') el.htmlFor = v;
    else if (PROPS.has(k) && !(el instanceof SVGElement)) el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** A label and its control (given or an <input> made from props), with an
 * optional hint tied by aria-describedby. Returns the wrapper; .control is the control. */
export function field(label, control, hint) {
  const input = control instanceof Element ? control : h('input', control);
  if (!input.id) input.id = uid('f');
  const parts = [h('label', { for: input.id }, label), input];
  if (hint) {
    const hintEl = h('p', { class: 'hint', id: uid('hint') }, hint);
    input.setAttribute('aria-describedby', hintEl.id);
    parts.push(hintEl);
  }
  const wrap = h('div', { class: 'field' }, parts);
  wrap.control = input;
  return wrap;
}

/** A checkbox with its label on the right. */
export function check(label, props = {}) {
  const input = h('input', { type: 'checkbox', ...props });
  if (!input.id) input.id = uid('c');
  const wrap = h('div', { class: 'check' }, input, h('label', { for: input.id }, label));
  wrap.control = input;
  return wrap;
}

/** An alert region for a page's or a card's errors; .show(text) / .clear(). */
export function alertBox() {
  return asAlert(h('p', { class: 'error', role: 'alert', hidden: true }));
}

/** Gives an existing alert element (of index.html) alertBox()'s .show and .clear. */
export function asAlert(el) {
  el.show = (text) => {
    el.textContent = text || '';
    el.hidden = !text;
  };
  el.clear = () => el.show('');
  return el;
}

/** A table with a (visually hidden) caption and column heads; .body is its tbody. */
export function table(caption, heads) {
  const body = h('tbody');
  const t = h('table', {},
    h('caption', { class: 'visually-hidden' }, caption),
    h('thead', {}, h('tr', {}, heads.map((x) => h('th', { scope: 'col' },
      x.hidden ? h('span', { class: 'visually-hidden' }, x.text) : x)))),
    body);
  const wrap = h('div', { class: 'table-wrap' }, t);
  wrap.body = body;
  wrap.table = t;
  return wrap;
}

/** A time (ISO 8601 text or unix seconds) in the reader's locale, '' when none. */
export function fmtTime(v) {
  if (v === null || v === undefined || v === '' || v === 0) return '';
  const d = typeof v === 'number' ? new Date(v * 1000) : new Date(v);
  return Number.isNaN(d.getTime()) ? String(v) : d.toLocaleString();
}

/** A <time> element for v (see fmtTime). */
export function timeEl(v) {
  const text = fmtTime(v);
  const d = typeof v === 'number' ? new Date(v * 1000) : new Date(v);
  return h('time', { dateTime: Number.isNaN(d.getTime()) ? undefined : d.toISOString() }, text);
}

/** "1 user" / "3 users". */
export function plural(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

/** A list from an answer that is either the list itself or an object holding it under key. */
export function listOf(r, key) {
  if (Array.isArray(r)) return r;
  if (r && Array.isArray(r[key])) return r[key];
  return [];
}

/** A list setting as an array: the API gives arrays, older shapes a comma-separated text. */
export function arrayOf(v) {
  if (Array.isArray(v)) return v.map(String);
  if (typeof v === 'string' && v) return v.split(/[\s,]+/).filter(Boolean);
  return [];
}

/** Lines of a textarea as a list, blanks dropped. */
export function lines(text) {
  return text.split(/\r?\n/).map((s) => s.trim()).filter(Boolean);
}

const STATE_TEXT = { normal: 'Normal', outage: 'Outage', recovering: 'Recovering' };

/** A domain's continuity state as a badge (text, not only colour). */
export function stateBadge(state) {
  const s = String(state || 'unknown');
  return h('span', { class: `badge state-${s.replace(/[^a-z]/g, '')}` }, STATE_TEXT[s] || s);
}

/** The password policy in words ({"min_length","upper","lower","digit","special"}). */
export function describePolicy(p) {
  if (!p) return '';
  const min = Number(p.min_length) || 1;
  const classes = [];
  if (p.upper) classes.push('an upper-case letter');
  if (p.lower) classes.push('a lower-case letter');
  if (p.digit) classes.push('a digit');
  if (p.special) classes.push('a special character');
  let text = `At least ${plural(min, 'character')}`;
  if (classes.length === 1) text += `, with ${classes[0]}`;
  else if (classes.length > 1) text += `, with ${classes.slice(0, -1).join(', ')} and ${classes.at(-1)}`;
  return `${text}.`;
}
