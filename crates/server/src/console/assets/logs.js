// A LogQL page: a log query's lines, or a metric query's graph, over a chosen range (Loki's
// API on medic).
import { h, api, time, labelList, errorBox } from './app.js';
import { chartOf } from './query.js';

const RANGES = [['15m', 900], ['1h', 3600], ['6h', 21600], ['1d', 86400]];
const state = { expr: '', range: 3600 };

async function completeLabels(list) {
  try {
    const names = await api('/loki/api/v1/labels');
    list.replaceChildren(...names.map((n) => h('option', { value: `{${n}="` })));
  } catch { list.replaceChildren(); }
}

export async function logs() {
  const list = h('datalist', { id: 'logql-names' });
  const expr = h('input', { id: 'logql', list: 'logql-names', value: state.expr, size: 70, autocomplete: 'off', spellcheck: 'false', placeholder: '{job="app"} |= "error"' });
  const range = h('select', { id: 'log-range' }, RANGES.map(([label, secs]) => h('option', { value: secs, selected: secs === state.range }, label)));
  const out = h('div', { id: 'log-result', 'aria-live': 'polite' });
  const run = async () => {
    Object.assign(state, { expr: expr.value, range: Number(range.value) });
    if (!state.expr.trim()) return;
    const end = Date.now() * 1e6, start = end - state.range * 1e9;
    out.replaceChildren(h('p', { class: 'muted' }, 'Running…'));
    try {
      const q = new URLSearchParams({ query: state.expr, start: String(start), end: String(end), limit: '200', direction: 'backward', step: String(Math.max(1, Math.round(state.range / 250))) });
      const data = await api(`/loki/api/v1/query_range?${q}`);
      if (data.resultType === 'streams') {
        const lines = data.result.flatMap((st) => st.values.map(([ns, line]) => ({ ns: Number(ns), line, labels: st.stream })))
          .sort((a, b) => b.ns - a.ns);
        out.replaceChildren(lines.length ? h('table', {},
          h('thead', {}, h('tr', {}, ['Time', 'Labels', 'Line'].map((t) => h('th', { scope: 'col' }, t)))),
          h('tbody', {}, lines.map((l) => h('tr', {}, h('td', {}, time(l.ns / 1e6)), h('td', {}, labelList(l.labels)), h('td', { class: 'logline' }, l.line)))))
          : h('p', { class: 'muted' }, 'No lines in this range.'));
      } else {
        out.replaceChildren(chartOf(data.result || [], Math.floor(start / 1e9), Math.floor(end / 1e9)));
      }
    } catch (e) { out.replaceChildren(errorBox(e)); }
  };
  const form = h('form', { class: 'stack', 'data-hold': '1', role: 'search', onsubmit: (ev) => { ev.preventDefault(); run(); } },
    h('label', { for: 'logql' }, 'LogQL query', expr), list,
    h('div', { class: 'row' }, h('label', { for: 'log-range' }, 'Range', range), h('button', { type: 'submit', class: 'primary' }, 'Run')));
  completeLabels(list);
  if (state.expr) run();
  return h('div', {}, h('h1', {}, 'Logs'), form, out);
}
