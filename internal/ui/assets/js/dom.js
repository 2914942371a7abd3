// DOM and formatting helpers. Text from the API only ever becomes text
// nodes: nothing here parses a string as HTML (the page's Trusted Types
// policy would refuse it anyway).

const SVG = 'http://www.w3.org/2000/svg';

// h builds an element: h('a', {href: '#/', class: 'x'}, 'text', child...).
// Attributes whose value is null, undefined or false are left out; a
// function value is an event listener (onclick → click).
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

// s builds an SVG element.
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el, attrs) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (typeof v === 'function' && k.startsWith('on')) {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'dataset') {
      for (const [dk, dv] of Object.entries(v)) el.dataset[dk] = dv;
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// clear empties an element and fills it with children.
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

// trunc is text cut with an ellipsis by CSS, whole in its title.
// keepFocus runs draw, which rebuilds elements under root, then gives the
// focus back to the element with the same data-key (or id): a live refresh
// must not throw a keyboard user back to the top of the page.
export function keepFocus(root, draw) {
  const a = document.activeElement;
  let sel = null;
  if (a && a !== root && root.contains(a)) {
    if (a.dataset && a.dataset.key) sel = `[data-key="${CSS.escape(a.dataset.key)}"]`;
    else if (a.id) sel = '#' + CSS.escape(a.id);
  }
  draw();
  if (sel && !root.contains(document.activeElement)) {
    const again = root.querySelector(sel);
    if (again) again.focus();
  }
}

export function trunc(text, tag = 'span', attrs = {}) {
  return h(tag, {...attrs, class: ['trunc', attrs.class].filter(Boolean).join(' '), title: text}, text);
}

const nf = new Intl.NumberFormat();
export function num(n) {
  return n === null || n === undefined ? '—' : nf.format(n);
}

export function pct(r) {
  if (r === null || r === undefined) return '—';
  if (r === 0) return '0%';
  if (r < 0.001) return '<0.1%';
  return (r * 100).toFixed(r < 0.1 ? 1 : 0) + '%';
}

// dur formats seconds for a person: 12 ms, 4.2 s, 3m 10s, 2h 5m, 3d 4h.
export function dur(sec) {
  if (sec === null || sec === undefined || Number.isNaN(sec)) return '—';
  if (sec < 1) return Math.round(sec * 1000) + ' ms';
  if (sec < 60) return (sec < 10 && !Number.isInteger(sec) ? sec.toFixed(1) : Math.round(sec)) + ' s';
  const m = Math.floor(sec / 60), sr = Math.round(sec % 60);
  if (m < 60) return sr ? `${m}m ${sr}s` : `${m}m`;
  const hr = Math.floor(m / 60), mr = m % 60;
  if (hr < 48) return mr ? `${hr}h ${mr}m` : `${hr}h`;
  const dr = hr % 24;
  return dr ? `${Math.floor(hr / 24)}d ${dr}h` : `${Math.floor(hr / 24)}d`;
}

const dateTime = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
});
const timeOnly = new Intl.DateTimeFormat(undefined, {hour: '2-digit', minute: '2-digit', second: '2-digit'});

// when is a <time>: the viewer's local time as text, the UTC value in its
// title and datetime attributes. With rel, a relative phrase follows.
export function when(iso, {rel = false} = {}) {
  if (!iso) return h('span', {class: 'muted'}, '—');
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return h('span', {}, iso);
  const now = new Date();
  const sameDay = d.toDateString() === now.toDateString();
  const text = sameDay ? timeOnly.format(d) : dateTime.format(d);
  const t = h('time', {datetime: d.toISOString(), title: 'UTC ' + d.toISOString().replace('.000Z', 'Z')}, text);
  if (!rel) return t;
  return h('span', {}, t, ' ', h('span', {class: 'muted small'}, '(' + relative(d, now) + ')'));
}

export function relative(d, now = new Date()) {
  const sec = (d.getTime() - now.getTime()) / 1000;
  const a = Math.abs(sec);
  if (a < 1) return 'now';
  const txt = dur(Math.round(a));
  return sec > 0 ? 'in ' + txt : txt + ' ago';
}

// badge is a status word in its colours.
export function badge(status, label) {
  const st = status || 'unknown';
  return h('span', {class: `badge s-${st.replace(/[^a-z]/g, '')}`, dataset: {status: st}}, label || st);
}

export function shortHash(hash) {
  return hash ? hash.slice(0, 12) : '—';
}

// link to a route of the page; the key lets a refresh give focus back.
export function link(href, text, attrs = {}) {
  return h('a', {href, ...attrs}, text);
}

export const enc = encodeURIComponent;

export function route(...parts) {
  return '#/' + parts.map(enc).join('/');
}

// table builds a semantic table: columns are {label, num?, width?}.
export function table({caption, columns, rows, cls}) {
  const cols = h('colgroup', {}, columns.map(c => h('col', {class: c.width ? 'w-' + c.width : null})));
  const head = h('thead', {}, h('tr', {}, columns.map(c =>
    h('th', {scope: 'col', class: c.num ? 'num' : null}, c.label))));
  const body = h('tbody', {}, rows);
  return h('table', {class: cls}, caption ? h('caption', {}, caption) : null, cols, head, body);
}

export function td(content, attrs = {}) {
  return h('td', attrs, content);
}

export function numTd(n) {
  return h('td', {class: 'num'}, num(n));
}
