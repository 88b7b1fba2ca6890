// Actor explorer: an actor's state and version, its events (paged, newest
// first), and a form that sends it a command from its type's model.
import { api, el, errorText, pretty } from './api.js';

const PAGE = 20;

export function mount(root) {
  const params = new URLSearchParams(location.hash.split('?')[1] || '');
  const ns = el('input', { id: 'ex-ns', value: params.get('ns') || 'default', size: 10 });
  const type = el('select', { id: 'ex-type' });
  const id = el('input', { id: 'ex-id', value: params.get('id') || '', placeholder: 'actor id', size: 16 });
  const load = el('button', { id: 'ex-load', type: 'button' }, 'Look up');
  const command = el('select', { id: 'ex-command' });
  const payload = el('textarea', { id: 'ex-payload', spellcheck: 'false' }, '{}');
  const send = el('button', { id: 'ex-send', type: 'button' }, 'Send command');
  const reply = el('pre', { id: 'ex-reply' });
  const stateBox = el('pre', { id: 'ex-state' }, '');
  const version = el('span', { id: 'ex-version' }, '');
  const events = el('tbody', { id: 'ex-events' });
  const older = el('button', { class: 'secondary', type: 'button' }, 'Older');
  const newer = el('button', { class: 'secondary', type: 'button' }, 'Newer');
  const pageInfo = el('span', { class: 'muted', id: 'ex-page' });
  let models = {};
  let top = 0;     // the newest version shown
  let latest = 0;  // the actor's version

  root.append(
    el('section', { class: 'card' }, el('h2', {}, 'Actor'),
      el('div', { class: 'row' }, el('label', {}, 'namespace', ns), el('label', {}, 'type', type),
        el('label', {}, 'id', id), load)),
    el('div', { class: 'row' },
      el('section', { class: 'card grow' }, el('h2', {}, 'State ', version), stateBox),
      el('section', { class: 'card grow' }, el('h2', {}, 'Send a command'),
        el('div', { class: 'row' }, el('label', {}, 'command', command)),
        el('label', { style: 'display:flex' }, 'payload (JSON object)', payload), send, reply)),
    el('section', { class: 'card' }, el('h2', {}, 'Events (newest first)'),
      el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'version'), el('th', {}, 'type'),
        el('th', {}, 'payload'), el('th', {}, 'time'))), events),
      el('div', { class: 'row' }, newer, older, pageInfo)));

  const key = () => `/v1/${encodeURIComponent(ns.value)}/actors/${encodeURIComponent(type.value)}/${encodeURIComponent(id.value)}`;

  function fillCommands() {
    const m = models[type.value];
    command.replaceChildren(...(m ? m.commands : []).map((c) => el('option', { value: c }, c)));
  }

  async function loadModels() {
    const r = await api('/v1/plugins');
    if (!r.ok) { reply.textContent = errorText(r); return; }
    models = {};
    for (const p of r.body.plugins) for (const t of p.actor_types) models[t.name] = t;
    const keep = params.get('type') || type.value;
    type.replaceChildren(...Object.keys(models).sort().map((n) => el('option', { value: n }, n)));
    if (models[keep]) type.value = keep;
    fillCommands();
  }

  async function refresh() {
    if (!id.value) return;
    const s = await api(key());
    if (!s.ok) {
      stateBox.textContent = errorText(s);
      version.textContent = '';
      latest = 0;
    } else {
      stateBox.textContent = pretty(s.body.state);
      version.textContent = `version ${s.body.version}`;
      latest = s.body.version;
    }
    top = latest;
    await loadEvents();
  }

  async function loadEvents() {
    events.replaceChildren();
    pageInfo.textContent = '';
    if (top < 1) return;
    const from = Math.max(1, top - PAGE + 1);
    const r = await api(`${key()}/events?from=${from}&limit=${top - from + 1}`);
    if (!r.ok) { pageInfo.textContent = errorText(r); return; }
    for (const e of r.body.events.slice().reverse()) {
      events.append(el('tr', { 'data-version': e.version }, el('td', {}, e.version), el('td', {}, e.type),
        el('td', {}, el('pre', {}, JSON.stringify(e.payload))), el('td', {}, new Date(e.timestamp).toLocaleTimeString())));
    }
    pageInfo.textContent = `versions ${from}..${top} of ${latest}`;
  }

  async function sendCommand() {
    let body;
    try {
      body = JSON.parse(payload.value || '{}');
      if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new Error('it must be a JSON object');
    } catch (e) {
      reply.className = 'error';
      reply.textContent = 'payload is not valid: ' + e.message;
      return;
    }
    if (!id.value) { reply.className = 'error'; reply.textContent = 'enter an actor id first'; return; }
    const r = await api(`${key()}/commands`, { method: 'POST', body: { command: command.value, payload: body } });
    reply.className = r.ok ? 'ok' : 'error';
    reply.textContent = r.ok ? pretty(r.body) : errorText(r);
    await refresh();
  }

  type.addEventListener('change', fillCommands);
  load.addEventListener('click', refresh);
  send.addEventListener('click', sendCommand);
  older.addEventListener('click', () => { if (top > PAGE) { top -= PAGE; loadEvents(); } });
  newer.addEventListener('click', () => { top = Math.min(latest, top + PAGE); loadEvents(); });
  loadModels().then(() => { if (id.value) refresh(); });
}
