// Repairs: the executions, and one execution's timeline — evidence, diagnosis, actions with
// their exact commands and output, verification, vetoes — with approve and reject.
import { h, api, can, time, labelList, errorBox, say, go } from './app.js';

const LABEL = { succeeded: 'succeeded (verified)', awaiting_approval: 'awaiting approval' };

function status(s) {
  return h('span', { class: `st-${s}` }, LABEL[s] || s);
}

export async function repairs() {
  const list = await api('/api/v1/medic/heal/executions?limit=200');
  if (!list.length) return h('div', {}, h('h1', {}, 'Repairs'), h('p', { class: 'muted' }, 'No executions yet.'));
  return h('div', {}, h('h1', {}, 'Repairs'),
    h('table', {},
      h('thead', {}, h('tr', {}, ['Playbook', 'Target', 'Status', 'Started', 'Summary'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, list.map((e) => h('tr', {},
        h('td', {}, h('a', { href: `#/repairs/${encodeURIComponent(e.id)}` }, e.playbook)),
        h('td', {}, e.target),
        h('td', {}, status(e.status)),
        h('td', {}, time(e.created_at)),
        h('td', {}, e.summary || (e.veto ? `vetoed by ${e.veto.guard}: ${e.veto.reason}` : '')))))));
}

function detail(v) {
  if (v == null || (typeof v === 'object' && !Object.keys(v).length)) return null;
  return h('pre', {}, typeof v === 'string' ? v : JSON.stringify(v, null, 2));
}

function step(s) {
  const cls = s.state === 'failed' || s.state === 'vetoed' ? 'failed' : s.state === 'started' ? '' : 'ok';
  return h('li', { class: cls },
    h('strong', {}, `${s.kind}: ${s.name}`), ' — ', h('span', { class: `st-${s.state}` }, s.state),
    h('span', { class: 'muted' }, ` ${time(s.started_at)}${s.ended_at ? ` → ${time(s.ended_at)}` : ''}`),
    s.message ? h('div', {}, s.message) : null,
    detail(s.detail));
}

function decisionForm(e) {
  const comment = h('input', { id: 'decision-comment', value: '' });
  const err = h('div', {});
  const decide = (verb) => async () => {
    try {
      await api(`/api/v1/medic/heal/executions/${encodeURIComponent(e.id)}/${verb}`, { method: 'POST', body: { comment: comment.value } });
      say(`Execution ${verb === 'approve' ? 'approved' : 'rejected'}`);
      go(location.hash);
    } catch (x) { err.replaceChildren(errorBox(x)); }
  };
  return h('form', { class: 'stack', 'aria-label': 'Decision', onsubmit: (ev) => ev.preventDefault() },
    h('h2', {}, 'This action waits for a person'),
    h('p', {}, `Proposed: ${e.candidates[e.attempt] || e.candidates.join(', ')}`),
    h('label', { for: 'decision-comment' }, 'Comment', comment),
    h('div', { class: 'row' },
      h('button', { type: 'button', class: 'primary', id: 'approve', onclick: decide('approve') }, 'Approve'),
      h('button', { type: 'button', class: 'danger', id: 'reject', onclick: decide('reject') }, 'Reject')),
    err);
}

export async function repair(id) {
  const e = await api(`/api/v1/medic/heal/executions/${encodeURIComponent(id)}`);
  const d = e.diagnosis;
  return h('div', {},
    h('h1', {}, `${e.playbook} on ${e.target}`),
    h('p', {}, 'Status: ', h('strong', { id: 'execution-status' }, status(e.status)),
      e.dry_run ? ' (dry run)' : '', h('span', { class: 'muted' }, ` · started ${time(e.created_at)}`)),
    h('p', {}, `Triggered by ${e.trigger.kind}`, e.trigger.by ? ` (${e.trigger.by})` : '', ': ', labelList(e.trigger.labels),
      e.trigger.fingerprint ? [' ', h('a', { href: `#/alerts/${encodeURIComponent(e.trigger.fingerprint)}` }, 'the alert')] : null),
    e.summary ? h('p', {}, e.summary) : null,
    e.veto ? h('p', { class: 'error' }, `Vetoed by ${e.veto.guard}: ${e.veto.reason}`) : null,
    e.status === 'awaiting_approval' && can('heal_decide') ? decisionForm(e) : null,
    e.decision ? h('p', {}, `${e.decision.approved ? 'Approved' : 'Rejected'} by ${e.decision.by} at ${time(e.decision.at)}${e.decision.comment ? `: ${e.decision.comment}` : ''}`) : null,
    h('h2', {}, 'Diagnosis'),
    d ? h('div', {}, h('p', {}, h('strong', {}, d.cause), d.description ? ` — ${d.description}` : ''),
      h('p', {}, 'Decided by ', h('code', {}, d.when), ' on:'), detail(d.support),
      (d.rejected || []).length ? h('p', { class: 'muted' }, `Not: ${d.rejected.map(([c, why]) => `${c} (${why})`).join('; ')}`) : null)
      : h('p', { class: 'muted' }, 'No diagnosis yet.'),
    h('h2', {}, 'Evidence'),
    Object.keys(e.evidence || {}).length
      ? h('dl', {}, Object.entries(e.evidence).map(([k, v]) => [h('dt', {}, k), h('dd', {}, detail(v))]))
      : h('p', { class: 'muted' }, 'None collected.'),
    h('h2', {}, 'Timeline'),
    h('ol', { class: 'timeline' }, (e.steps || []).map(step)));
}
