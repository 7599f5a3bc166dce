// Hand-drawn SVG charts: small, dependency-free, accessible (role="img" + label, <title> per mark, and the data
// as a table next to the big chart). Colours come from CSS custom properties so light/dark themes both work.

import { fmt, h, s } from './dom.js';

// Okabe–Ito: distinguishable with the common colour-vision deficiencies.
export const SERIES_COLOURS = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#F0E442', '#000000'];

/**
 * Daily bars for one month: `days` = [{day: 1..n, value, date}], `daysInMonth`, `today` (bars after it are empty
 * slots), `quota` (dashed line, the daily share of the monthly target).
 */
export function monthBars({ days, daysInMonth, today, quota, label }) {
  const W = 300;
  const H = 64;
  const pad = { top: 6, bottom: 2 };
  const values = days.map((d) => d.value);
  const max = Math.max(1, quota ?? 0, ...values) * 1.08;
  const slot = W / daysInMonth;
  const barW = Math.max(1.5, slot * 0.7);
  const y = (v) => H - pad.bottom - (v / max) * (H - pad.top - pad.bottom);
  const byDay = new Map(days.map((d) => [d.day, d]));
  const marks = [];
  for (let day = 1; day <= daysInMonth; day += 1) {
    const x = (day - 1) * slot + (slot - barW) / 2;
    const d = byDay.get(day);
    if (day > today) {
      marks.push(s('rect', { x, y: H - pad.bottom - 2, width: barW, height: 2, class: 'bar-future' }));
      continue;
    }
    const v = d ? d.value : 0;
    const top = Math.min(y(v), H - pad.bottom - 1);
    marks.push(
      s('rect', { x, y: top, width: barW, height: H - pad.bottom - top, rx: Math.min(2, barW / 3), class: day === today ? 'bar bar-today' : 'bar' },
        s('title', {}, `${d ? fmt.dayMonth(d.date) : `Day ${day}`}: ${fmt.int(v)}`)),
    );
  }
  if (quota) {
    marks.push(s('line', { x1: 0, x2: W, y1: y(quota), y2: y(quota), class: 'quota-line' }, s('title', {}, `Daily quota ${fmt.int(quota)}`)));
  }
  return s('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', class: 'month-bars', role: 'img', 'aria-label': label }, marks);
}

function niceTicks(max, count = 4) {
  if (max <= 0) return [0, 1];
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((st) => st >= raw) ?? raw;
  const ticks = [];
  for (let v = 0; v <= max + step * 0.001; v += step) ticks.push(Number(v.toFixed(6)));
  if (ticks[ticks.length - 1] < max) ticks.push(ticks[ticks.length - 1] + step);
  return ticks;
}

/**
 * A multi-series line chart over dates. `series` = [{name, points: [{date: 'YYYY-MM-DD', value}]}].
 * Returns a <figure> with the SVG, a legend, and the numbers in a collapsible table.
 */
export function lineChart({ series, title, unit = '%', emptyText }) {
  const dates = [...new Set(series.flatMap((se) => se.points.map((p) => p.date)))].sort();
  if (!dates.length) return h('p', { class: 'empty' }, emptyText ?? 'No data yet.');
  const W = 640;
  const H = 240;
  const m = { top: 12, right: 16, bottom: 28, left: 44 };
  const iw = W - m.left - m.right;
  const ih = H - m.top - m.bottom;
  const max = Math.max(...series.flatMap((se) => se.points.map((p) => p.value)), 0);
  const ticks = niceTicks(max || 1);
  const yMax = ticks[ticks.length - 1];
  const x = (date) => m.left + (dates.length === 1 ? iw / 2 : (dates.indexOf(date) / (dates.length - 1)) * iw);
  const y = (v) => m.top + ih - (v / yMax) * ih;

  const grid = ticks.map((t) => s('g', { class: 'tick' },
    s('line', { x1: m.left, x2: W - m.right, y1: y(t), y2: y(t), class: 'grid' }),
    s('text', { x: m.left - 8, y: y(t), 'text-anchor': 'end', 'dominant-baseline': 'middle', class: 'axis-label' }, `${t}${unit}`)));
  const every = Math.max(1, Math.ceil(dates.length / 6));
  const xLabels = dates
    .filter((_, i) => i % every === 0 || i === dates.length - 1)
    .map((d, i, shown) => s('text', {
      x: x(d),
      y: H - 8,
      'text-anchor': shown.length > 1 && i === shown.length - 1 ? 'end' : i === 0 && shown.length > 1 ? 'start' : 'middle',
      class: 'axis-label',
    }, fmt.dayMonth(d)));

  const lines = series.map((se, i) => {
    const colour = SERIES_COLOURS[i % SERIES_COLOURS.length];
    const pts = [...se.points].sort((a, b) => (a.date < b.date ? -1 : 1));
    const path = pts.map((p, j) => `${j ? 'L' : 'M'}${x(p.date).toFixed(1)},${y(p.value).toFixed(1)}`).join(' ');
    return s('g', { class: 'series' },
      s('path', { d: path, fill: 'none', stroke: colour, 'stroke-width': 2.25, 'stroke-linejoin': 'round', 'stroke-linecap': 'round' }),
      pts.map((p, j) => s('circle', { cx: x(p.date), cy: y(p.value), r: j === pts.length - 1 ? 3.5 : 2.25, fill: colour },
        s('title', {}, `${se.name}, ${fmt.dayMonth(p.date)}: ${p.value.toFixed(2)}${unit}`))));
  });

  const latest = series.map((se) => {
    const pts = [...se.points].sort((a, b) => (a.date < b.date ? -1 : 1));
    return `${se.name} ${pts[pts.length - 1].value.toFixed(2)}${unit}`;
  });
  const svg = s('svg', { viewBox: `0 0 ${W} ${H}`, class: 'line-chart', role: 'img', 'aria-label': `${title}. Latest: ${latest.join(', ')}.` },
    grid, xLabels, lines);

  const legend = h('ul', { class: 'legend', 'aria-hidden': 'true' },
    series.map((se, i) => h('li', {}, h('span', { class: 'swatch', style: { background: SERIES_COLOURS[i % SERIES_COLOURS.length] } }), se.name)));

  const table = h('details', { class: 'data-table' },
    h('summary', {}, 'Show the numbers'),
    h('table', {},
      h('caption', { class: 'sr-only' }, title),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Date'), series.map((se) => h('th', { scope: 'col' }, se.name)))),
      h('tbody', {}, dates.map((d) => h('tr', {},
        h('th', { scope: 'row' }, fmt.dayMonth(d)),
        series.map((se) => {
          const p = se.points.find((pt) => pt.date === d);
          return h('td', {}, p ? `${p.value.toFixed(2)}${unit}` : '–');
        }))))));
  return h('figure', { class: 'chart' }, svg, legend, table);
}

/** A horizontal stacked bar of mailbox statuses with its numbers written out. */
export function statusBar(group) {
  const parts = [
    ['Connected', 'ok'],
    ['Disconnected', 'bad'],
    ['Failed', 'warn'],
    ['Not connected', 'idle'],
  ];
  const label = parts.filter(([k]) => group[k]).map(([k]) => `${fmt.int(group[k])} ${k.toLowerCase()}`).join(', ');
  return h('div', { class: 'status-row' },
    h('div', { class: 'status-name', title: group.name }, group.name),
    h('div', { class: 'status-bar', role: 'img', 'aria-label': `${group.name}: ${label}` },
      parts.filter(([k]) => group[k]).map(([k, cls]) => h('span', { class: `seg seg-${cls}`, style: { flexGrow: String(group[k]) }, title: `${k}: ${fmt.int(group[k])}` }))),
    h('div', { class: 'status-count' },
      h('strong', {}, fmt.int(group.Connected)), ` / ${fmt.int(group.total)}`,
      group.Disconnected + group.Failed > 0 ? h('span', { class: 'status-bad' }, ` · ${fmt.int(group.Disconnected + group.Failed)} down`) : null));
}
