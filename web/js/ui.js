// ui.js — small pieces the webmail's views share: the toast (a short
// "Sent" or "Password changed" in a polite live region) and whether a key
// press belongs to a text field (so that single-key shortcuts stay out of
// the way of typing).

const TOAST_MS = 4000;
let toastTimer = null;

export function toast(text) {
  const el = document.getElementById('toast');
  clearTimeout(toastTimer);
  el.textContent = text;
  el.hidden = false;
  toastTimer = setTimeout(() => {
    el.hidden = true;
    el.textContent = '';
  }, TOAST_MS);
}

/** True when the key event is typing into a field or a modifier is held. */
export function isTyping(ev) {
  if (ev.ctrlKey || ev.metaKey || ev.altKey) return true;
  const t = ev.target;
  if (!(t instanceof Element)) return false;
  return t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName);
}
