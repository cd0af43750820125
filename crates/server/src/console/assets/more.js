// Playbooks (their trust standing, pause and resume, recent executions) and status (targets,
// rules, the configuration with its secrets masked, the audit log).
import { h, api, can, time, labelList, errorBox, say, go } from './app.js';

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
      pauseControls(p),
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
