// A PromQL page like Prometheus's graph page: an editor that completes metric and label names,
// a time range and step, a graph and a table.
import { h, api, apiWhole, errorBox } from './app.js';

const RANGES = [['5m', 300], ['15m', 900], ['1h', 3600], ['6h', 21600], ['1d', 86400], ['7d', 604800]];
const COLORS = ['#1f5fbf', '#b3261e', '#1e6b34', '#8a5a00', '#6b3fa0', '#0f7c86', '#9c3d6b', '#4d5b6a'];
const state = { expr: '', range: 3600, step: '' };

/** Completion: metric names, then label names of the metric being typed. */
async function complete(list, text) {
  const m = /([a-zA-Z_:][a-zA-Z0-9_:]*)\{[^}]*$/.exec(text);
  let names = [];
  try {
    names = m
      ? (await api(`/api/v1/labels?match[]=${encodeURIComponent(m[1])}`)).map((l) => `${text}${l}=`)
      : await api('/api/v1/label/__name__/values');
  } catch { names = []; }
  list.replaceChildren(...names.slice(0, 500).map((n) => h('option', { value: n })));
}

export function fmt(v) {
  const a = Math.abs(v);
  if (a >= 1e9) return `${(v / 1e9).toPrecision(3)}G`;
  if (a >= 1e6) return `${(v / 1e6).toPrecision(3)}M`;
  if (a >= 1e3) return `${(v / 1e3).toPrecision(3)}k`;
  return a && a < 0.01 ? v.toExponential(1) : String(Number(v.toPrecision(3)));
}

const SVG = 'http://www.w3.org/2000/svg';
export function s(tag, attrs, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  if (text != null) el.append(document.createTextNode(String(text)));
  return el;
}

function name(metric) {
  const { __name__: n = '', ...rest } = metric;
  return `${n}{${Object.entries(rest).map(([k, v]) => `${k}="${v}"`).join(', ')}}`;
}

/** The series as lines on a time axis, in an SVG with a title and a legend. */
function chart(result, start, end) {
  const W = 1000, H = 300, L = 60, B = 24, T = 8;
  const pts = result.flatMap((r) => r.values.map(([, v]) => Number(v))).filter(Number.isFinite);
  let lo = pts.reduce((a, b) => Math.min(a, b), 0), hi = pts.reduce((a, b) => Math.max(a, b), 0);
  if (hi === lo) hi = lo + 1;
  const x = (t) => L + ((t - start) / Math.max(end - start, 1)) * (W - L - 8);
  const y = (v) => T + (1 - (v - lo) / (hi - lo)) * (H - T - B);
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': 'chart-title' });
  svg.append(s('title', { id: 'chart-title' }, `${result.length} series from ${new Date(start * 1000).toLocaleString()} to ${new Date(end * 1000).toLocaleString()}`));
  svg.append(s('line', { class: 'axis', x1: L, y1: T, x2: L, y2: H - B }), s('line', { class: 'axis', x1: L, y1: H - B, x2: W - 8, y2: H - B }));
  for (const v of [lo, (lo + hi) / 2, hi]) svg.append(s('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end' }, fmt(v)));
  for (const t of [start, (start + end) / 2, end]) svg.append(s('text', { x: x(t), y: H - 6, 'text-anchor': 'middle' }, new Date(t * 1000).toLocaleTimeString()));
  result.forEach((r, i) => {
    // A gap in the data breaks the line.
    const runs = [[]];
    r.values.forEach(([t, v]) => {
      const n = Number(v);
      if (Number.isFinite(n)) runs[runs.length - 1].push(`${x(t).toFixed(1)},${y(n).toFixed(1)}`);
      else runs.push([]);
    });
    for (const run of runs.filter((p) => p.length)) {
      const color = COLORS[i % COLORS.length];
      // A lone point is a dot; a run of points, a line.
      const [cx, cy] = run[0].split(',');
      const mark = run.length > 1
        ? s('polyline', { class: 'series', points: run.join(' '), stroke: color })
        : s('circle', { class: 'point', cx, cy, r: 2.5, fill: color });
      mark.append(s('title', {}, name(r.metric)));
      svg.append(mark);
    }
  });
  return svg;
}

function table(result) {
  return h('table', {},
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Series'), h('th', { scope: 'col' }, 'Last value'), h('th', { scope: 'col' }, 'Points'))),
    h('tbody', {}, result.map((r, i) => h('tr', {},
      h('td', {}, h('span', { 'aria-hidden': 'true', style: `color:${COLORS[i % COLORS.length]}` }, '■ '), name(r.metric)),
      h('td', {}, r.values.length ? r.values[r.values.length - 1][1] : ''),
      h('td', {}, String(r.values.length))))));
}

/** A graph and a table of `result` (matrix) between `start` and `end` (seconds). */
export function chartOf(result, start, end) {
  return h('div', {}, result.length ? chart(result, start, end) : h('p', { class: 'muted' }, 'No data in this range.'), table(result));
}

export async function query() {
  const list = h('datalist', { id: 'promql-names' });
  const expr = h('input', { id: 'promql', list: 'promql-names', value: state.expr, size: 70, autocomplete: 'off', spellcheck: 'false', placeholder: 'rate(http_requests_total[5m])' });
  const range = h('select', { id: 'range' }, RANGES.map(([label, secs]) => h('option', { value: secs, selected: secs === state.range }, label)));
  const step = h('input', { id: 'step', value: state.step, placeholder: 'auto', size: 6 });
  const out = h('div', { id: 'query-result', 'aria-live': 'polite' });
  let typing;
  expr.addEventListener('input', () => { clearTimeout(typing); typing = setTimeout(() => complete(list, expr.value), 150); });
  const run = async () => {
    Object.assign(state, { expr: expr.value, range: Number(range.value), step: step.value });
    if (!state.expr.trim()) return;
    const end = Math.floor(Date.now() / 1000), start = end - state.range;
    const stepSecs = state.step || String(Math.max(1, Math.round(state.range / 250)));
    out.replaceChildren(h('p', { class: 'muted' }, 'Running…'));
    try {
      const q = new URLSearchParams({ query: state.expr, start, end, step: stepSecs });
      const whole = await apiWhole(`/api/v1/query_range?${q}`);
      const result = (whole && whole.data && whole.data.result) || [];
      // PromQL's warnings and infos, as text (never markup: they quote label values).
      const said = [...(whole.warnings || []), ...(whole.infos || [])];
      const notes = said.length ? h('ul', { class: 'notes', 'aria-label': 'Warnings and notes about this query' }, said.map((n) => h('li', {}, n))) : null;
      out.replaceChildren(...[notes].filter(Boolean), result.length ? chart(result, start, end) : h('p', { class: 'muted' }, 'No data in this range.'), table(result));
    } catch (e) { out.replaceChildren(errorBox(e)); }
  };
  const form = h('form', { class: 'stack', 'data-hold': '1', role: 'search', onsubmit: (ev) => { ev.preventDefault(); run(); } },
    h('label', { for: 'promql' }, 'PromQL expression', expr), list,
    h('div', { class: 'row' }, h('label', { for: 'range' }, 'Range', range), h('label', { for: 'step' }, 'Step (s)', step),
      h('button', { type: 'submit', class: 'primary' }, 'Run')));
  complete(list, '');
  if (state.expr) run();
  return h('div', {}, h('h1', {}, 'Query'), form, out);
}
