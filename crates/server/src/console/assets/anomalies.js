// Anomalies: each anomaly rule's series with its baseline band, its values and the anomalies
// marked on them, and the recent anomalies.
import { h, api, time, labelList, errorBox } from './app.js';
import { s, fmt } from './query.js';

const HOURS = 6;

function key(rule, labels) { return encodeURIComponent(JSON.stringify([rule, labels])); }

function selector(name, labels) {
  const m = Object.entries(labels).map(([k, v]) => `${k}=${JSON.stringify(v)}`);
  return `${name}{${m.join(',')}}`;
}

function same(metric, labels) {
  const { __name__: _n, ...rest } = metric;
  const a = Object.entries(rest).sort().join('|'), b = Object.entries(labels).sort().join('|');
  return a === b;
}

async function range(q, start, end, step) {
  const p = new URLSearchParams({ query: q, start, end, step });
  return (await api(`/api/v1/query_range?${p}`)).result || [];
}

/** The band (lower to upper), the baseline, the values and the anomalies of one series. */
async function bandChart(rule, labels, expr, events) {
  const end = Math.floor(Date.now() / 1000), start = end - HOURS * 3600, step = Math.max(1, Math.round((end - start) / 300));
  const withRule = { ...labels, anomaly: rule };
  const [lower, upper, baseline, values] = await Promise.all([
    range(selector('anomaly_lower', withRule), start, end, step),
    range(selector('anomaly_upper', withRule), start, end, step),
    range(selector('anomaly_baseline', withRule), start, end, step),
    expr ? range(expr, start, end, step) : [],
  ]);
  const value = values.find((r) => same(r.metric, labels));
  const series = { lower: lower[0], upper: upper[0], baseline: baseline[0], value };
  const all = Object.values(series).filter(Boolean).flatMap((r) => r.values.map(([, v]) => Number(v))).filter(Number.isFinite);
  if (!all.length) return h('p', { class: 'muted' }, `No data for this series in the last ${HOURS} hours.`);
  let lo = all.reduce((a, b) => Math.min(a, b)), hi = all.reduce((a, b) => Math.max(a, b));
  if (hi === lo) { hi += 1; lo -= 1; }
  const W = 1000, H = 300, L = 60, B = 24, T = 8;
  const x = (t) => L + ((t - start) / (end - start)) * (W - L - 8);
  const y = (v) => T + (1 - (v - lo) / (hi - lo)) * (H - T - B);
  const svg = s('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-labelledby': 'band-title' });
  svg.append(s('title', { id: 'band-title' }, `${rule}: values, baseline band and ${events.length} anomalies over the last ${HOURS} hours`));
  svg.append(s('line', { class: 'axis', x1: L, y1: T, x2: L, y2: H - B }), s('line', { class: 'axis', x1: L, y1: H - B, x2: W - 8, y2: H - B }));
  for (const v of [lo, (lo + hi) / 2, hi]) svg.append(s('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end' }, fmt(v)));
  for (const t of [start, (start + end) / 2, end]) svg.append(s('text', { x: x(t), y: H - 6, 'text-anchor': 'middle' }, new Date(t * 1000).toLocaleTimeString()));
  if (series.lower && series.upper) {
    const up = new Map(series.upper.values.map(([t, v]) => [t, Number(v)]));
    const pairs = series.lower.values.map(([t, v]) => [t, Number(v), up.get(t)]).filter(([, l, u]) => Number.isFinite(l) && Number.isFinite(u));
    if (pairs.length) {
      const pts = [...pairs.map(([t, , u]) => `${x(t)},${y(u)}`), ...pairs.reverse().map(([t, l]) => `${x(t)},${y(l)}`)];
      svg.append(s('polygon', { class: 'band', points: pts.join(' '), fill: '#c9dcf2', stroke: 'none' }));
    }
  }
  const line = (r, cls, color, dash) => {
    if (!r) return;
    const pts = r.values.filter(([, v]) => Number.isFinite(Number(v))).map(([t, v]) => `${x(t)},${y(Number(v))}`);
    if (pts.length) svg.append(s('polyline', { class: `series ${cls}`, points: pts.join(' '), stroke: color, 'stroke-dasharray': dash || 'none' }));
  };
  line(series.baseline, 'baseline', '#35608f', '5 4');
  line(series.value, 'value', '#1d1d1b');
  for (const e of events) {
    const t = Number(e.start);
    if (t < start) continue;
    const m = s('line', { class: 'marker', x1: x(t), y1: T, x2: x(t), y2: H - B, stroke: '#b3261e', 'stroke-width': 2 });
    m.append(s('title', {}, `anomaly at ${time(e.start)}, score ${Number(e.peak).toFixed(2)}`));
    svg.append(m);
  }
  return h('div', {}, svg, h('p', { class: 'muted' }, 'Shaded: the band of expected values; dashed: the baseline; black: the values; red: anomalies.'));
}

export async function anomalies(selected) {
  const [seriesList, events, rules] = await Promise.all([
    api('/api/v1/medic/anomalies/baseline'), api('/api/v1/medic/anomalies?limit=100'), api('/api/v1/rules'),
  ]);
  const page = h('div', {}, h('h1', {}, 'Anomalies'));
  if (!seriesList.length) { page.append(h('p', { class: 'muted' }, 'No anomaly rule has series yet.')); return page; }
  const exprs = Object.fromEntries((rules.groups || []).flatMap((g) => g.rules).map((r) => [r.name, r.query]));
  const chosen = selected ? JSON.parse(selected) : [seriesList[0].rule, seriesList[0].labels];
  const [rule, labels] = chosen;
  const mine = events.filter((e) => e.rule === rule && JSON.stringify(e.labels) === JSON.stringify(labels));
  page.append(h('h2', {}, `${rule} `, labelList(labels)));
  try { page.append(await bandChart(rule, labels, exprs[rule], mine)); } catch (e) { page.append(errorBox(e)); }
  page.append(h('h2', {}, 'Series'), h('table', {},
    h('thead', {}, h('tr', {}, ['Rule', 'Series', 'Last value', 'Band', 'Score', 'Learned from'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, seriesList.map((v) => h('tr', {},
      h('td', {}, v.rule),
      h('td', {}, h('a', { href: `#/anomalies/${key(v.rule, v.labels)}`, 'aria-label': `Show ${v.rule} ${JSON.stringify(v.labels)}` }, labelList(v.labels))),
      h('td', {}, fmt(Number(v.last.value))),
      h('td', {}, v.last.lower == null ? '—' : `${fmt(v.last.lower)} … ${fmt(v.last.upper)}`),
      h('td', { class: v.last.anomalous ? 'st-failed' : '' }, Number(v.last.score).toFixed(2)),
      h('td', {}, `${v.points} points${v.warm ? '' : ' (warming up)'}`))))));
  page.append(h('h2', {}, 'Recent anomalies'), events.length
    ? h('ul', {}, events.slice(0, 20).map((e) => h('li', {}, `${e.rule} `, labelList(e.labels), ` from ${time(e.start)}${e.end ? ` to ${time(e.end)}` : ' (ongoing)'}, peak score ${Number(e.peak).toFixed(2)}`)))
    : h('p', { class: 'muted' }, 'None.'));
  return page;
}
