// dom.js: building the page. Every value from the engine goes in as text (never as HTML), so
// a record named "<script>" is shown, not run.
import { isRaw } from './api.js';

// h makes an element: h('a', {href: '#/runs', class: 'x', onclick: fn}, 'text', child, [more]).
// Attributes that are null, undefined or false are left out; true sets an empty attribute.
export function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.append(kid instanceof Node ? kid : String(kid));
  }
  return el;
}

// show writes one value for people: '—' for none, exact decimals as written, objects as JSON.
export function show(v) {
  if (v === null || v === undefined || v === '') return '—';
  if (isRaw(v)) return v.rawJSON;
  if (typeof v === 'object') return JSON.stringify(v, null, 1);
  return String(v);
}

// same compares two values as the engine wrote them.
export function same(a, b) {
  return JSON.stringify(a === undefined ? null : a) === JSON.stringify(b === undefined ? null : b);
}

// when writes a time as the person's local date and time, with the exact UTC time on hover.
export function when(iso) {
  if (!iso) return h('span', { class: 'muted' }, 'never');
  const d = new Date(iso);
  const text = Number.isNaN(d.getTime()) ? iso
    : d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
  return h('time', { datetime: iso, title: iso }, text);
}

export function duration(ms) {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

const STATUS_TEXT = {
  active: 'active', needs_reauth: 'needs re-authorisation', paused: 'paused',
  disconnected: 'disconnected', queued: 'queued', running: 'running', succeeded: 'succeeded',
  failed: 'failed', partial: 'partial', canceled: 'canceled', PENDING: 'pending',
  RESOLVED: 'resolved', IGNORED: 'ignored', healthy: 'healthy', silent: 'silent',
  missed: 'missed events', not_configured: 'not configured', linked: 'linked', conflict: 'conflict',
};

// badge shows a status as a word with a colour; the word alone carries the meaning.
export function badge(status) {
  return h('span', { class: `badge badge-${String(status).toLowerCase()}` },
    STATUS_TEXT[status] || String(status));
}

// bar shows one entity's progress in a run: a <progress> (indeterminate while the total is
// unknown) with its figures in words beside it.
export function bar(entity, p) {
  const total = p.total;
  const pct = total ? Math.min(100, Math.floor((p.done * 100) / total))
    : p.state === 'done' ? 100 : null;
  const label = `${entity}: ${p.phase}, ${p.state}`;
  const meter = h('progress', { max: 100, 'aria-label': label, dataset: { entity } });
  if (pct !== null) meter.value = pct;
  return h('div', { class: `bar bar-${p.state}`, dataset: { entity, state: p.state, pct: pct ?? '' } },
    h('span', { class: 'bar-name' }, entity, ' ', h('span', { class: 'muted' }, p.phase)),
    meter,
    h('span', { class: 'bar-figures' },
      `${p.done}${total !== null && total !== undefined ? ` / ${total}` : ''}`,
      pct !== null ? ` · ${pct}%` : '', ` · ${p.state.replace('_', ' ')}`));
}

// table makes a table with a caption (for screen readers), head and rows, scrolling sideways
// on a narrow screen.
export function table(caption, head, rows, cls = '') {
  return h('div', { class: 'table-wrap' },
    h('table', { class: cls },
      h('caption', { class: caption.visible ? '' : 'sr-only' }, caption.text || caption),
      h('thead', null, h('tr', null, head.map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', null, rows)));
}

let flashTimer = null;
// flash says something in the status line at the top (read out by screen readers).
export function flash(message, kind = 'ok', ...extra) {
  const el = document.getElementById('flash');
  el.replaceChildren(h('span', { class: `flash-${kind}` }, message, ...extra));
  el.dataset.kind = kind;
  clearTimeout(flashTimer);
  if (kind === 'ok') flashTimer = setTimeout(() => el.replaceChildren(), 15000);
}

// errorText writes an API error for people, naming the field when there is one.
export function errorText(e) {
  return e.field ? `${e.message} (${e.field})` : e.message;
}

// field makes a labelled form control whose API field name (data-field) lets the error a
// route answers with be shown beside it.
let seq = 0;
export function field(label, control, apiField, hint) {
  const id = control.id || `f${++seq}`;
  control.id = id;
  if (apiField) control.dataset.field = apiField;
  const err = h('span', { class: 'field-error', id: `${id}-error`, role: 'alert' });
  const hintEl = hint ? h('span', { class: 'hint', id: `${id}-hint` }, hint) : null;
  control.setAttribute('aria-describedby', [hintEl ? `${id}-hint` : null, `${id}-error`].filter(Boolean).join(' '));
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, hintEl, err);
}

// fieldError shows err beside the control of its field in form (the control whose data-field
// is the field, or the nearest one above it: "schedule.full" for "schedule.full.at"), marks
// it invalid and moves the focus there; false when no control matches, or the control has no
// place for the message (the caller shows it elsewhere).
export function fieldError(form, err) {
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  for (const el of form.querySelectorAll('.field-error')) el.textContent = '';
  if (!err || !err.field) return false;
  let name = err.field;
  for (;;) {
    const el = form.querySelector(`[data-field="${CSS.escape(name)}"]`);
    if (el) {
      el.setAttribute('aria-invalid', 'true');
      const out = document.getElementById(`${el.id}-error`);
      if (out) out.textContent = err.message;
      el.focus();
      return out !== null;
    }
    const cut = name.lastIndexOf('.');
    if (cut < 0) return false;
    name = name.slice(0, cut);
  }
}

// shortId shows the start of a UUID (the whole one on hover).
export function shortId(id) {
  return id ? h('code', { title: id }, id.slice(0, 8)) : '—';
}
