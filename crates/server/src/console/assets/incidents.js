// Incidents: the list, and one incident's timeline, comments, status changes and its
// post-incident report.
import { h, api, apiText, can, time, labelList, errorBox, say, go } from './app.js';

const NEXT = {
  triggered: ['ack', 'mitigate', 'resolve'],
  acknowledged: ['mitigate', 'resolve'],
  mitigated: ['resolve'],
  resolved: ['close'],
  closed: [],
};
const VERB = { ack: 'Acknowledge', mitigate: 'Mark mitigated', resolve: 'Resolve', close: 'Close' };

export async function incidents() {
  const list = await api('/api/v1/medic/incidents');
  if (!list.length) return h('div', {}, h('h1', {}, 'Incidents'), h('p', { class: 'muted' }, 'No incidents.'));
  return h('div', {}, h('h1', {}, 'Incidents'),
    h('table', {},
      h('thead', {}, h('tr', {}, ['Incident', 'Level', 'Status', 'Opened', 'Assignee'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, list.map((i) => h('tr', {},
        h('td', {}, h('a', { href: `#/incidents/${i.id}` }, `#${i.id} ${i.title}`)),
        h('td', {}, String(i.level)), h('td', { class: `st-${i.status}` }, i.status),
        h('td', {}, time(i.opened_at)), h('td', {}, i.assignee || ''))))));
}

function act(id, action, body) {
  return async (ev) => {
    if (ev && ev.preventDefault) ev.preventDefault();
    try {
      await api(`/api/v1/medic/incidents/${encodeURIComponent(id)}/${action}`, { method: 'POST', body });
      say(`Incident ${id}: ${action}`);
      go(location.hash);
    } catch (e) { document.getElementById('incident-error').replaceChildren(errorBox(e)); }
  };
}

export async function incident(id) {
  const i = await api(`/api/v1/medic/incidents/${encodeURIComponent(id)}`);
  const page = h('div', {},
    h('h1', {}, `#${i.id} ${i.title}`),
    h('p', {}, 'Status: ', h('strong', { class: `st-${i.status}`, id: 'incident-status' }, i.status),
      ` · level ${i.level} · opened ${time(i.opened_at)}`, i.assignee ? ` · assigned to ${i.assignee}` : ''),
    h('p', {}, labelList(Object.fromEntries(i.key || []))),
    h('div', { id: 'incident-error' }));
  if (can('ack')) {
    const buttons = (NEXT[i.status] || []).map((a) => h('button', { type: 'button', onclick: act(i.id, a, {}) }, VERB[a]));
    const text = h('textarea', { id: 'incident-comment', rows: 2, cols: 60 });
    const form = h('form', { class: 'stack', 'aria-label': 'Comment' },
      h('label', { for: 'incident-comment' }, 'Add a comment', text),
      h('div', { class: 'row' }, h('button', { type: 'submit', class: 'primary' }, 'Comment'), buttons));
    form.addEventListener('submit', (ev) => act(i.id, 'comment', { text: text.value })(ev));
    page.append(form);
  }
  page.append(h('h2', {}, 'Timeline'),
    h('ol', { class: 'timeline' }, (i.timeline || []).map((e) => h('li', {},
      h('strong', {}, e.kind), h('span', { class: 'muted' }, ` ${time(e.at)} · ${e.who}`), e.detail ? h('div', {}, e.detail) : null))));
  const report = h('section', { 'aria-label': 'Report' }, h('h2', {}, 'Post-incident report'));
  if (['resolved', 'closed'].includes(i.status)) {
    try { report.append(h('pre', {}, await apiText(`/api/v1/medic/incidents/${encodeURIComponent(i.id)}/report?format=markdown`))); } catch (e) { report.append(errorBox(e)); }
  } else {
    report.append(h('p', { class: 'muted' }, 'Written once the incident is resolved.'));
  }
  page.append(report);
  return page;
}
