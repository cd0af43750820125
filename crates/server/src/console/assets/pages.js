// Overview, alerts, one alert (with its silence form) and silences.
import { h, api, can, time, labelList, errorBox, session, say, go } from './app.js';

/** An Alertmanager matcher as a filter: `name="value"`, the value quoted with escapes. */
function filterOf(m) {
  const op = m.isRegex ? (m.isEqual === false ? '!~' : '=~') : (m.isEqual === false ? '!=' : '=');
  return `${m.name}${op}${JSON.stringify(m.value)}`;
}

function alertsUrl(matchers, extra = '') {
  const q = matchers.map((m) => `filter=${encodeURIComponent(filterOf(m))}`).join('&');
  return `/api/v2/alerts?${q}${q && extra ? '&' : ''}${extra}`;
}

/** `{a="1", b=~"x.*"}` or `a="1",b!="2"` into matchers; throws with the position. */
export function parseMatchers(text) {
  const s = text.trim().replace(/^\{/, '').replace(/\}$/, '');
  const out = [];
  const re = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(,|$)/y;
  let at = 0;
  while (at < s.length) {
    re.lastIndex = at;
    const m = re.exec(s);
    if (!m) throw new Error(`cannot read a matcher at position ${at + 1}: want name="value"`);
    out.push({ name: m[1], value: JSON.parse(`"${m[3]}"`), isRegex: m[2].includes('~'), isEqual: !m[2].startsWith('!') });
    at = re.lastIndex;
  }
  return out;
}

function severityOf(a) { return (a.labels && a.labels.severity) || 'none'; }

function isNew(a) { return session.lastVisit && Date.parse(a.startsAt) > session.lastVisit; }

async function section(title, load) {
  const card = h('section', { class: 'card', 'aria-label': title }, h('h2', {}, title));
  try { card.append(await load()); } catch (e) { card.append(errorBox(e)); }
  return card;
}

export async function overview() {
  const [firing, repairsCard, incidents, slos, anomalies] = await Promise.all([
    section('Firing alerts', async () => {
      const list = await api('/api/v2/alerts?silenced=false&inhibited=false');
      const by = {};
      for (const a of list) by[severityOf(a)] = (by[severityOf(a)] || 0) + 1;
      const fresh = list.filter(isNew).length;
      return h('div', {},
        h('p', { class: 'big' }, String(list.length)),
        h('ul', {}, Object.entries(by).sort().map(([s, n]) => h('li', {}, h('span', { class: `sev-${s}` }, s), `: ${n}`))),
        fresh ? h('p', {}, h('span', { class: 'new' }, `${fresh} new since your last visit`)) : null,
        h('a', { href: '#/alerts' }, 'All alerts'));
    }),
    section('Repairs', async () => {
      const list = await api('/api/v1/medic/heal/executions?limit=200');
      const running = list.filter((e) => ['running', 'verifying'].includes(e.status));
      const waiting = list.filter((e) => e.status === 'awaiting_approval');
      return h('div', {},
        h('p', {}, h('span', { class: 'big' }, String(running.length)), ' running, ',
          h('span', { class: 'big st-awaiting_approval' }, String(waiting.length)), ' awaiting approval'),
        h('ul', {}, waiting.slice(0, 5).map((e) => h('li', {}, h('a', { href: `#/repairs/${encodeURIComponent(e.id)}` }, `${e.playbook} on ${e.target}`)))),
        h('a', { href: '#/repairs' }, 'All repairs'));
    }),
    section('Open incidents', async () => {
      const list = await api('/api/v1/medic/incidents');
      const open = (list || []).filter((i) => !['resolved', 'closed'].includes(i.status));
      return h('div', {}, h('p', { class: 'big' }, String(open.length)),
        h('ul', {}, open.slice(0, 5).map((i) => h('li', {}, `#${i.id} ${i.title} (${i.status})`))));
    }),
    section('SLO error budgets', async () => {
      const list = await api('/api/v1/medic/slos');
      if (!list || !list.length) return h('p', { class: 'muted' }, 'No SLOs are loaded.');
      return h('ul', {}, list.map((s) => h('li', {}, `${s.service}/${s.slo}: `,
        s.budget_remaining == null ? 'no data' : `${(s.budget_remaining * 100).toFixed(1)}% of the budget left`)));
    }),
    section('Recent anomalies', async () => {
      const list = await api('/api/v1/medic/anomalies?limit=5');
      if (!list || !list.length) return h('p', { class: 'muted' }, 'None.');
      return h('ul', {}, list.map((a) => h('li', {}, `${a.rule} `, labelList(a.labels), ` score ${Number(a.peak).toFixed(2)} at ${time(a.start)}`)));
    }),
  ]);
  return h('div', {}, h('h1', {}, 'Overview'), h('div', { class: 'cards' }, firing, repairsCard, incidents, slos, anomalies));
}

function stateOf(a) {
  if (a.status && a.status.silencedBy && a.status.silencedBy.length) return 'silenced';
  if (a.status && a.status.inhibitedBy && a.status.inhibitedBy.length) return 'inhibited';
  return (a.status && a.status.state) || 'active';
}

function alertTable(list) {
  if (!list.length) return h('p', { class: 'muted' }, 'No alerts.');
  return h('table', {},
    h('thead', {}, h('tr', {}, ['Alert', 'Labels', 'State', 'Since'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, list.map((a) => h('tr', {},
      h('td', {}, h('a', { href: `#/alerts/${encodeURIComponent(a.fingerprint)}` }, a.labels.alertname || a.fingerprint),
        isNew(a) ? h('span', { class: 'new' }, 'new') : null),
      h('td', {}, labelList(a.labels, ['alertname'])),
      h('td', { class: `st-${stateOf(a)}` }, stateOf(a)),
      h('td', {}, time(a.startsAt))))));
}

let alertFilter = '';

export async function alerts() {
  const input = h('input', { id: 'alert-filter', value: alertFilter, placeholder: '{severity="critical", team="db"}', size: 48 });
  const out = h('div', {});
  const load = async () => {
    try {
      alertFilter = input.value;
      const list = await api(alertsUrl(parseMatchers(input.value)));
      list.sort((a, b) => severityOf(a).localeCompare(severityOf(b)) || (a.labels.alertname || '').localeCompare(b.labels.alertname || ''));
      out.replaceChildren(alertTable(list));
    } catch (e) { out.replaceChildren(errorBox(e)); }
  };
  const form = h('form', { class: 'row', role: 'search', onsubmit: (ev) => { ev.preventDefault(); input.blur(); load(); } },
    h('label', { for: 'alert-filter' }, 'Filter by matchers', input), h('button', { type: 'submit' }, 'Filter'));
  await load();
  return h('div', {}, h('h1', {}, 'Alerts'), form, out);
}

export async function alert(fingerprint) {
  const list = await api('/api/v2/alerts');
  const a = list.find((x) => x.fingerprint === fingerprint);
  if (!a) return h('div', {}, h('h1', {}, 'Alert'), h('p', {}, 'This alert is no longer active. ', h('a', { href: '#/alerts' }, 'All alerts')));
  const state = stateOf(a);
  const page = h('div', {},
    h('h1', {}, a.labels.alertname || 'Alert'),
    h('p', {}, 'State: ', h('strong', { class: `st-${state}`, id: 'alert-state' }, state),
      (a.status.silencedBy || []).length ? ` by silence ${a.status.silencedBy.join(', ')}` : ''),
    h('h2', {}, 'Labels'), labelList(a.labels),
    h('h2', {}, 'Annotations'),
    h('dl', {}, Object.entries(a.annotations || {}).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
    h('p', { class: 'muted' }, `Since ${time(a.startsAt)}; receivers: ${(a.receivers || []).map((r) => r.name).join(', ')}`));
  if (can('silence') && state !== 'silenced') {
    page.append(h('p', {}, h('button', { type: 'button', class: 'primary', id: 'silence-alert', onclick: () => page.append(silenceForm(a)) }, 'Silence this alert')));
  }
  const [acks, history] = await Promise.all([ackSection(a), historySection(a)]);
  page.append(acks, history);
  return page;
}

/** The alert's groups, each acknowledged or not, with an ack form. */
async function ackSection(a) {
  const s = h('section', { 'aria-label': 'Acknowledgement' }, h('h2', {}, 'Acknowledgement'));
  try {
    const groups = (await api('/api/v1/medic/alerts/groups')).filter((g) => g.alerts.some((x) => x.fingerprint === a.fingerprint));
    for (const g of groups) {
      s.append(h('p', {}, `Group ${g.id} (receiver ${g.receiver}): `, g.ack
        ? `acknowledged by ${g.ack.author} until ${time(g.ack.expiresAt)}${g.ack.comment ? ` — ${g.ack.comment}` : ''}`
        : 'not acknowledged'));
      if (!g.ack && can('ack')) s.append(ackForm(g));
    }
    if (!groups.length) s.append(h('p', { class: 'muted' }, 'In no notification group.'));
  } catch (e) { s.append(errorBox(e)); }
  return s;
}

function ackForm(g) {
  const comment = h('input', { id: `ack-comment-${g.id}`, required: true });
  const hours = h('input', { id: `ack-hours-${g.id}`, type: 'number', min: '0.1', step: 'any', value: '2' });
  const err = h('div', {});
  const form = h('form', { class: 'row', 'aria-label': `Acknowledge group ${g.id}` },
    h('label', { for: comment.id }, 'Comment', comment), h('label', { for: hours.id }, 'For (hours)', hours),
    h('button', { type: 'submit' }, 'Acknowledge'), err);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const duration = `${Math.max(1, Math.round(Number(hours.value) * 60))}m`;
      await api('/api/v1/medic/alerts/ack', { method: 'POST', body: { group: g.id, author: session.me.name, comment: comment.value, duration } });
      say('Group acknowledged');
      go(location.hash);
    } catch (e) { err.replaceChildren(errorBox(e)); }
  });
  return form;
}

async function historySection(a) {
  const s = h('section', { 'aria-label': 'History' }, h('h2', {}, 'History'));
  try {
    const events = await api(`/api/v1/medic/alerts/history?fingerprint=${encodeURIComponent(a.fingerprint)}&limit=50`);
    s.append(events.length ? h('ol', { class: 'timeline' }, events.map((e) => h('li', {},
      h('strong', {}, e.kind), h('span', { class: 'muted' }, ` ${time(e.at)}`), e.author ? ` by ${e.author}` : '',
      e.receiver ? ` to ${e.receiver}` : '', e.detail ? h('div', {}, typeof e.detail === 'string' ? e.detail : JSON.stringify(e.detail)) : null)))
      : h('p', { class: 'muted' }, 'Nothing recorded yet.'));
  } catch (e) { s.append(errorBox(e)); }
  return s;
}

/** The form that silences what `a`'s labels match, with a preview of what it would catch. */
function silenceForm(a) {
  document.getElementById('silence-alert')?.remove();
  const text = Object.entries(a.labels).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(', ');
  return silenceEditor({ matchers: `{${text}}`, comment: '', hours: 2 }, () => go(location.hash));
}

/** A silence to create (no `id`) or replace (`id`): matchers, duration, comment, and the
 * alerts it would catch, refreshed as the matchers change. */
function silenceEditor(init, done) {
  const matchers = h('textarea', { id: 'silence-matchers', rows: 3, cols: 60 }, init.matchers);
  const hours = h('input', { id: 'silence-hours', type: 'number', min: '0.1', step: 'any', value: String(init.hours) });
  const comment = h('input', { id: 'silence-comment', required: true, value: init.comment });
  const preview = h('div', { 'aria-live': 'polite', id: 'silence-preview' });
  const err = h('div', {});
  const refresh = async () => {
    try {
      const caught = await api(alertsUrl(parseMatchers(matchers.value), 'silenced=true&inhibited=true'));
      preview.replaceChildren(h('p', {}, `This silence would catch ${caught.length} alert${caught.length === 1 ? '' : 's'}:`),
        h('ul', {}, caught.slice(0, 50).map((c) => h('li', {}, labelList(c.labels)))),
        caught.length > 50 ? h('p', { class: 'muted' }, `and ${caught.length - 50} more`) : null);
    } catch (e) { preview.replaceChildren(errorBox(e)); }
  };
  matchers.addEventListener('change', refresh);
  const title = init.id ? `Edit silence ${init.id}` : 'New silence';
  const form = h('form', { class: 'stack', 'data-hold': '1', 'aria-label': title },
    h('h2', {}, title),
    h('label', { for: 'silence-matchers' }, 'Matchers', matchers),
    h('label', { for: 'silence-hours' }, 'Duration from now (hours)', hours),
    h('label', { for: 'silence-comment' }, 'Comment', comment),
    preview,
    h('div', { class: 'row' }, h('button', { type: 'submit', class: 'primary' }, init.id ? 'Save silence' : 'Create silence'),
      h('button', { type: 'button', onclick: () => { form.remove(); done(); } }, 'Cancel')),
    err);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const now = Date.now();
      const body = {
        matchers: parseMatchers(matchers.value), startsAt: new Date(now).toISOString(),
        endsAt: new Date(now + Number(hours.value) * 3600e3).toISOString(),
        createdBy: session.me.name, comment: comment.value,
      };
      if (init.id) body.id = init.id;
      const r = await api('/api/v2/silences', { method: 'POST', body });
      say(`Silence ${r.silenceID} ${init.id ? 'saved' : 'created'}`);
      form.remove();
      done();
    } catch (e) { err.replaceChildren(errorBox(e)); }
  });
  refresh();
  setTimeout(() => (init.id ? matchers : comment).focus(), 0);
  return form;
}

export async function silences() {
  const [list, alertList] = await Promise.all([api('/api/v2/silences'), api('/api/v2/alerts?silenced=true')]);
  list.sort((a, b) => (a.status.state === 'active' ? 0 : 1) - (b.status.state === 'active' ? 0 : 1) || b.endsAt.localeCompare(a.endsAt));
  const page = h('div', {}, h('h1', {}, 'Silences'));
  const reopen = () => go('#/silences');
  if (can('silence')) {
    page.append(h('p', {}, h('button', { type: 'button', class: 'primary', id: 'new-silence', onclick: (ev) => {
      ev.target.hidden = true;
      ev.target.parentElement.after(silenceEditor({ matchers: '{}', comment: '', hours: 2 }, reopen));
    } }, 'New silence')));
  }
  const caught = (s) => alertList.filter((a) => (a.status.silencedBy || []).includes(s.id));
  const rows = list.map((s) => h('tr', {},
    h('td', {}, h('span', { class: 'labels' }, s.matchers.map((m) => h('span', { class: 'label' }, filterOf(m))))),
    h('td', { class: `st-${s.status.state}` }, s.status.state),
    h('td', {}, time(s.endsAt)),
    h('td', {}, s.createdBy, ': ', s.comment),
    h('td', {}, s.status.state === 'active' ? matched(caught(s)) : ''),
    h('td', {}, can('silence') && s.status.state !== 'expired' ? h('span', { class: 'row' },
      h('button', { type: 'button', 'aria-label': `Edit silence ${s.id}`, onclick: () => {
        const left = Math.max(0.1, (Date.parse(s.endsAt) - Date.now()) / 3600e3);
        const text = `{${s.matchers.map(filterOf).join(', ')}}`;
        page.append(silenceEditor({ id: s.id, matchers: text, comment: s.comment, hours: Number(left.toFixed(2)) }, reopen));
      } }, 'Edit'),
      h('button', { type: 'button', class: 'danger', 'aria-label': `Expire silence ${s.id}`, onclick: async (ev) => {
        ev.target.disabled = true;
        try { await api(`/api/v2/silence/${encodeURIComponent(s.id)}`, { method: 'DELETE' }); say('Silence expired'); go('#/silences'); } catch (e) { ev.target.after(errorBox(e)); }
      } }, 'Expire')) : '')));
  page.append(list.length ? h('table', {},
    h('thead', {}, h('tr', {}, ['Matchers', 'State', 'Ends', 'Created by', 'Silenced alerts', 'Actions'].map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', {}, rows)) : h('p', { class: 'muted' }, 'No silences.'));
  return page;
}

/** The alerts a silence holds back, as a count that opens into the list. */
function matched(alerts) {
  if (!alerts.length) return '0';
  return h('details', {}, h('summary', {}, `${alerts.length} alert${alerts.length === 1 ? '' : 's'}`),
    h('ul', {}, alerts.slice(0, 50).map((a) => h('li', {}, h('a', { href: `#/alerts/${encodeURIComponent(a.fingerprint)}` }, a.labels.alertname || a.fingerprint), ' ', labelList(a.labels, ['alertname'])))));
}
