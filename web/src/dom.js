// Tiny DOM and formatting helpers (no framework: the page is small and must build to a few static files).

const SVG_NS = 'http://www.w3.org/2000/svg';

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

function setAttrs(el, attrs) {
  for (const [key, value] of Object.entries(attrs ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') el.setAttribute('class', value);
    else if (key === 'style' && typeof value === 'object') Object.assign(el.style, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'text') el.textContent = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
}

/** `h('div', {class: 'x'}, child, ...)`: an HTML element. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

/** Same for SVG elements. */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

/** Replace an element's children. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const intFmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const compactFmt = new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 });
const pctFmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1, minimumFractionDigits: 0 });
const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

export const fmt = {
  int: (n) => (n === null || n === undefined ? '–' : intFmt.format(n)),
  compact: (n) => (n === null || n === undefined ? '–' : compactFmt.format(n)),
  pct: (n) => (n === null || n === undefined ? '–' : `${pctFmt.format(n)} %`),
  ago(ts, now = Date.now()) {
    if (!ts) return 'never';
    const sec = Math.round((new Date(ts).getTime() - now) / 1000);
    const abs = Math.abs(sec);
    if (abs < 45) return 'just now';
    if (abs < 3600) return rtf.format(Math.round(sec / 60), 'minute');
    if (abs < 86400) return rtf.format(Math.round(sec / 3600), 'hour');
    return rtf.format(Math.round(sec / 86400), 'day');
  },
  dayMonth(iso) {
    const [y, m, d] = iso.split('-').map(Number);
    return new Date(Date.UTC(y, m - 1, d)).toLocaleDateString(undefined, { day: 'numeric', month: 'short', timeZone: 'UTC' });
  },
  dateTime: (ts) => (ts ? new Date(ts).toLocaleString() : ''),
};

/** Set text and, when it changed, flash the element (the CSS honours prefers-reduced-motion). */
export function setLive(el, text) {
  if (el.textContent === text) return false;
  const first = el.dataset.live === undefined;
  el.textContent = text;
  el.dataset.live = '1';
  if (!first) {
    el.classList.remove('bump');
    void el.offsetWidth; // restart the animation
    el.classList.add('bump');
  }
  return !first;
}
