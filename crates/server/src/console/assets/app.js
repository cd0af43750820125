// medic's console: a hash-routed page over medic's own API. Everything shown is built with
// DOM nodes and text nodes (never HTML strings), so nothing from an alert, a label or a
// playbook can become markup.
import { overview, alerts, alert, silences } from './pages.js';
import { repairs, repair } from './repairs.js';
import { query } from './query.js';
import { playbooks, status } from './more.js';
import { incidents, incident } from './incidents.js';
import { anomalies } from './anomalies.js';
import { logs } from './logs.js';

const REFRESH_MS = 5000;
const routes = [
  [/^\/?$/, overview],
  [/^\/alerts$/, alerts],
  [/^\/alerts\/([^/]+)$/, alert],
  [/^\/silences$/, silences],
  [/^\/repairs$/, repairs],
  [/^\/repairs\/([^/]+)$/, repair],
  [/^\/query$/, query],
  [/^\/logs$/, logs],
  [/^\/playbooks$/, playbooks],
  [/^\/incidents$/, incidents],
  [/^\/anomalies$/, anomalies],
  [/^\/anomalies\/([^/]+)$/, anomalies],
  [/^\/incidents\/([^/]+)$/, incident],
  [/^\/status$/, status],
];
const sections = [['', 'Overview'], ['alerts', 'Alerts'], ['silences', 'Silences'], ['repairs', 'Repairs'], ['incidents', 'Incidents'], ['playbooks', 'Playbooks'], ['anomalies', 'Anomalies'], ['query', 'Query'], ['logs', 'Logs'], ['status', 'Status']];

/** An element: `h('a', {href: '#/x', onclick: f}, 'text', child)`. Text is always text. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

/** Calls medic's API with the signed-in credentials; the `data` of a success, or throws. */
/** The headers every request carries: the console's mark and the signed-in credentials. */
function authHeaders() {
  const headers = { 'X-Medic-Console': '1' };
  const cred = sessionStorage.getItem('medic.auth');
  if (cred) headers.Authorization = cred;
  return headers;
}

export async function api(path, opts) {
  const json = await apiWhole(path, opts);
  if (json && json.status === 'success' && 'data' in json) return json.data;
  return json;
}

/** The whole answer of an API call: `data` with the `warnings` and `infos` beside it. */
export async function apiWhole(path, { method = 'GET', body } = {}) {
  const headers = authHeaders();
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = null; }
  if (r.status === 401) { session.me = null; showLogin(); throw new ApiError(401, 'Sign in to continue.'); }
  if (!r.ok) throw new ApiError(r.status, (json && (json.error || json.message)) || text || r.statusText);
  return json;
}

/** A text answer (a report in Markdown), with the same credentials. */
export async function apiText(path) {
  const r = await fetch(path, { headers: authHeaders() });
  const text = await r.text();
  if (!r.ok) throw new ApiError(r.status, text || r.statusText);
  return text;
}

export const session = { me: null, lastVisit: Number(localStorage.getItem('medic.lastVisit') || 0) };

/** Whether the signed-in identity holds `permission` (the console offers nothing else). */
export function can(permission) {
  return !!session.me && session.me.permissions.includes(permission);
}

export function time(v) {
  if (v == null || v === '') return '';
  const d = typeof v === 'number' ? new Date(v > 1e12 ? v : v * 1000) : new Date(v);
  return isNaN(d) ? String(v) : d.toLocaleString();
}

export function labelList(labels, skip = []) {
  const shown = Object.entries(labels || {}).filter(([k]) => !skip.includes(k));
  return h('span', { class: 'labels' }, shown.length
    ? shown.map(([k, v]) => h('span', { class: 'label' }, `${k}="${v}"`))
    : h('span', { class: 'label' }, '{}'));
}

export function errorBox(e) {
  return h('p', { class: 'error', role: 'alert' }, e instanceof Error ? e.message : String(e));
}

export function say(text) { document.getElementById('status').textContent = text; }

export function go(hash) { if (location.hash === hash) render(); else location.hash = hash; }

function drawNav(path) {
  const nav = document.getElementById('nav');
  const here = path.split('/')[1] || '';
  nav.replaceChildren(...sections.filter(([t]) => t !== 'logs' || session.logs).map(([target, name]) =>
    h('a', { href: `#/${target}`, 'aria-current': here === target ? 'page' : null }, name)));
  const who = document.getElementById('who');
  who.replaceChildren();
  if (session.me) {
    who.append(`${session.me.name} (${session.me.role})`);
    if (session.me.authenticated) who.append(h('button', { type: 'button', onclick: signOut }, 'Sign out'));
  }
}

function signOut() {
  sessionStorage.removeItem('medic.auth');
  session.me = null;
  showLogin();
}

function showLogin(message) {
  clearInterval(timer);
  drawNav('');
  const main = document.getElementById('main');
  const err = h('p', { class: 'error', role: 'alert', hidden: !message }, message || '');
  const user = h('input', { id: 'login-user', name: 'username', autocomplete: 'username', required: true });
  const pass = h('input', { id: 'login-pass', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const form = h('form', { class: 'stack', 'aria-labelledby': 'login-title' },
    h('h1', { id: 'login-title' }, 'Sign in to medic'),
    h('label', { for: 'login-user' }, 'User or token name', user),
    h('label', { for: 'login-pass' }, 'Password or token', pass),
    h('div', { class: 'row' }, h('button', { class: 'primary', type: 'submit' }, 'Sign in')),
    err);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    // A user signs in with its password (basic auth); a token goes alone as a bearer token.
    const bytes = new TextEncoder().encode(`${user.value}:${pass.value}`);
    const basic = 'Basic ' + btoa(String.fromCharCode(...bytes));
    for (const cred of [basic, `Bearer ${pass.value}`]) {
      sessionStorage.setItem('medic.auth', cred);
      try { await whoami(); render(); return; } catch { /* next */ }
    }
    sessionStorage.removeItem('medic.auth');
    err.hidden = false;
    err.textContent = 'Those credentials were not accepted.';
  });
  main.replaceChildren(form);
  user.focus();
}

/** Who the stored credentials name; throws (and forgets them) when nobody. */
async function whoami() {
  const me = await api('/api/v1/medic/whoami');
  if (!me.signed_in) { session.me = null; throw new ApiError(401, 'Those credentials were not accepted.'); }
  session.me = me;
  session.logs = !!me.logs;
}

let timer = null;
let shown = '';

/** Draws the page the hash names, and keeps it fresh while nobody is typing in it. */
export async function render() {
  clearInterval(timer);
  const path = location.hash.replace(/^#/, '') || '/';
  if (!session.me) {
    try { await whoami(); } catch (e) { showLogin(e.status === 401 ? '' : e.message); return; }
  }
  drawNav(path);
  const main = document.getElementById('main');
  const route = routes.find(([re]) => re.test(path));
  if (!route) { main.replaceChildren(h('h1', {}, 'Not found'), h('p', {}, h('a', { href: '#/' }, 'Overview'))); return; }
  const params = path.match(route[0]).slice(1).map(decodeURIComponent);
  const draw = async (first) => {
    // Never pull the page from under someone: not while a control has the focus (typing,
    // tabbing through it) or a form is open.
    const focused = document.activeElement;
    if (!first && ((focused && focused !== document.body && focused !== main) || main.querySelector('[data-hold]'))) return;
    try {
      const node = await route[1](...params);
      if (location.hash.replace(/^#/, '') !== path && !(path === '/' && !location.hash)) return;
      main.replaceChildren(node);
      if (first && shown !== path) { main.focus({ preventScroll: true }); shown = path; }
      main.dataset.rendered = String(Date.now());
    } catch (e) {
      if (e.status !== 401) main.replaceChildren(errorBox(e));
    }
  };
  await draw(true);
  timer = setInterval(() => draw(false), REFRESH_MS);
}

window.addEventListener('hashchange', render);
window.addEventListener('pagehide', () => localStorage.setItem('medic.lastVisit', String(Date.now())));
render();
