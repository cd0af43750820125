// Playbooks (their trust standing, pause and resume, recent executions) and status (targets,
// rules, the configuration with its secrets masked, the audit log).
import { h, api, can, time, labelList, errorBox, say, go } from './app.js';
import { parseMatchers } from './pages.js';

function pct(r) { return r == null ? '—' : `${(r * 100).toFixed(0)}%`; }

function pauseControls(p) {
  if (!can('heal_pause')) return null;
  const scope = `playbook:${p.name}`;
  const act = (verb, body) => async (ev) => {
    ev.target.disabled = true;
    try { await api(`/api/v1/medic/heal/${verb}`, { method: 'POST', body }); say(`${p.name}: ${verb}d`); go('#/playbooks'); } catch (e) { ev.target.after(errorBox(e)); }
  };
  return p.paused
    ? h('button', { type: 'button', onclick: act('resume', { scope }) }, `Resume ${p.name}`)
    : h('button', { type: 'button', class: 'danger', onclick: act('pause', { scope, reason: 'paused from the console' }) }, `Pause ${p.name}`);
}

export async function playbooks() {
  const [list, trust, recent] = await Promise.all([
    api('/api/v1/medic/heal/playbooks'), api('/api/v1/medic/heal/trust'), api('/api/v1/medic/heal/executions?limit=200'),
  ]);
  if (!list.length) return h('div', {}, h('h1', {}, 'Playbooks'), h('p', { class: 'muted' }, 'No playbooks are loaded.'));
  return h('div', {}, h('h1', {}, 'Playbooks'), list.map((p) => {
    const records = trust.filter((t) => t.playbook === p.name);
    const runs = recent.filter((e) => e.playbook === p.name).slice(0, 5);
    return h('section', { class: 'card', 'aria-label': p.name },
      h('h2', {}, p.name, p.dry_run ? ' (dry run)' : '', p.enabled ? '' : ' (disabled)'),
      p.description ? h('p', {}, p.description) : null,
      h('p', { class: 'muted' }, `Trigger: ${p.trigger} · causes: ${p.causes.join(', ')} · file ${p.file}`),
      p.paused ? h('p', { class: 'st-awaiting_approval' }, `Paused by ${p.paused.by} at ${time(p.paused.at)}${p.paused.until ? ` until ${time(p.paused.until)}` : ''}: ${p.paused.reason}`) : null,
      h('div', { class: 'row' }, pauseControls(p), can('heal_trigger')
        ? h('button', { type: 'button', onclick: (ev) => { ev.target.hidden = true; ev.target.parentElement.after(runForm(p)); } }, `Run ${p.name} by hand…`) : null),
      h('h3', {}, 'Trust by action'),
      records.length ? h('table', {},
        h('thead', {}, h('tr', {}, ['Cause', 'Action', 'Success rate', 'Attempts', 'Standing'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', {}, records.map((t) => h('tr', {}, h('td', {}, t.cause), h('td', {}, t.action), h('td', {}, pct(t.rate)),
          h('td', {}, `${t.successes}/${t.attempts}`), h('td', {}, String(t.level))))))
        : h('p', { class: 'muted' }, `No outcomes yet for ${p.actions.join(', ')}.`),
      h('h3', {}, 'Recent executions'),
      runs.length ? h('ul', {}, runs.map((e) => h('li', {}, h('a', { href: `#/repairs/${encodeURIComponent(e.id)}` }, `${e.target}: ${e.status}`), ` ${time(e.created_at)}`)))
        : h('p', { class: 'muted' }, 'None.'));
  }));
}

/** Labels for a run by hand, its dry run first, then the run itself. */
function runForm(p) {
  const labels = h('textarea', { id: `run-labels-${p.name}`, rows: 2, cols: 60, placeholder: '{instance="db1:5432"}' });
  const plan = h('div', { 'aria-live': 'polite' });
  const start = h('button', { type: 'button', class: 'primary', hidden: true }, 'Start the repair');
  const parsed = () => Object.fromEntries(parseMatchers(labels.value).map((m) => {
    if (m.isRegex || !m.isEqual) throw new Error(`${m.name}: a run by hand takes exact labels (name="value")`);
    return [m.name, m.value];
  }));
  const preview = async (ev) => {
    ev.preventDefault();
    try {
      const r = await api('/api/v1/medic/heal/dry-run', { method: 'POST', body: { playbook: p.name, alert: { labels: parsed() } } });
      plan.replaceChildren(h('p', {}, r.would_act ? 'The playbook would act on these labels:' : 'The playbook would not act on these labels:'), h('pre', {}, r.plan));
      start.hidden = false;
    } catch (e) { plan.replaceChildren(errorBox(e)); }
  };
  start.addEventListener('click', async () => {
    try {
      const e = await api('/api/v1/medic/heal/trigger', { method: 'POST', body: { playbook: p.name, labels: parsed() } });
      say(`${p.name} started`);
      go(`#/repairs/${encodeURIComponent(e.id)}`);
    } catch (e) { plan.append(errorBox(e)); }
  });
  const form = h('form', { class: 'stack', 'data-hold': '1', 'aria-label': `Run ${p.name} by hand`, onsubmit: preview },
    h('label', { for: labels.id }, 'Alert labels', labels),
    h('div', { class: 'row' }, h('button', { type: 'submit' }, 'Dry run'), start,
      h('button', { type: 'button', onclick: () => go('#/playbooks') }, 'Cancel')),
    plan);
  setTimeout(() => labels.focus(), 0);
  return form;
}

async function part(title, load) {
  const s = h('section', { 'aria-label': title }, h('h2', {}, title));
  try { s.append(await load()); } catch (e) { s.append(errorBox(e)); }
  return s;
}

export async function status() {
  const parts = await Promise.all([
    part('Targets', async () => {
      const t = await api('/api/v1/targets');
      const list = t.activeTargets || [];
      if (!list.length) return h('p', { class: 'muted' }, 'No targets.');
      return h('table', {},
        h('thead', {}, h('tr', {}, ['Endpoint', 'Labels', 'Health', 'Last scrape', 'Error'].map((x) => h('th', { scope: 'col' }, x)))),
        h('tbody', {}, list.map((x) => h('tr', {}, h('td', {}, x.scrapeUrl), h('td', {}, labelList(x.labels)),
          h('td', { class: x.health === 'up' ? 'st-succeeded' : 'st-failed' }, x.health), h('td', {}, time(x.lastScrape)), h('td', {}, x.lastError || '')))));
    }),
    part('Rules', async () => {
      const r = await api('/api/v1/rules');
      const rows = (r.groups || []).flatMap((g) => g.rules.map((x) => h('tr', {}, h('td', {}, g.name), h('td', {}, x.name),
        h('td', {}, x.type), h('td', { class: x.health === 'ok' ? 'st-succeeded' : 'st-failed' }, x.health), h('td', {}, x.state || ''), h('td', {}, x.lastError || ''))));
      if (!rows.length) return h('p', { class: 'muted' }, 'No rules are loaded.');
      return h('table', {}, h('thead', {}, h('tr', {}, ['Group', 'Rule', 'Type', 'Health', 'State', 'Error'].map((x) => h('th', { scope: 'col' }, x)))), h('tbody', {}, rows));
    }),
    part('Configuration (secrets masked)', async () => h('pre', {}, (await api('/api/v1/status/config')).yaml)),
    can('audit') ? part('Audit log (latest 50)', async () => {
      const list = await api('/api/v1/medic/audit?limit=50');
      return h('table', {}, h('thead', {}, h('tr', {}, ['When', 'Who', 'Action', 'Target', 'Result'].map((x) => h('th', { scope: 'col' }, x)))),
        h('tbody', {}, list.map((a) => h('tr', {}, h('td', {}, time(a.at)), h('td', {}, a.actor), h('td', {}, a.action), h('td', {}, a.target), h('td', {}, a.result)))));
    }) : null,
  ]);
  return h('div', {}, h('h1', {}, 'Status'), parts);
}
