// Plugins: each loaded plugin, which version serves which namespace, and its
// model; reload and roll back with the swap report
// (POST /v1/plugins/{name}/reload).
import { api, el, errorText } from './api.js';

function report(r) {
  if (!r.ok) return el('pre', { class: 'error report' }, errorText(r));
  const b = r.body;
  return el('pre', { class: 'ok report' },
    `${b.plugin} ${b.from_version} -> ${b.to_version}\n` +
    `actors moved: ${b.actors_migrated} (snapshot ${b.via_snapshot}, upgrade ${b.via_upgrade}, replay ${b.via_replay}), ` +
    `dropped ${b.actors_dropped}\npause: ${b.pause_ms} ms`);
}

function plugin(p, reloadDone) {
  const out = el('div', { class: 'swap' });
  const swap = (body) => async () => {
    out.replaceChildren(el('span', { class: 'muted' }, 'swapping...'));
    const r = await api(`/v1/plugins/${encodeURIComponent(p.name)}/reload`, { method: 'POST', body });
    out.replaceChildren(report(r));
    reloadDone();
  };
  const types = el('tbody');
  for (const t of p.actor_types) {
    types.append(el('tr', {}, el('td', {}, t.name), el('td', {}, t.schema_version),
      el('td', {}, t.commands.join(', ')), el('td', {}, t.events.join(', '))));
  }
  const versions = el('tbody', { class: 'versions' });
  for (const v of p.versions || []) {
    versions.append(el('tr', {}, el('td', {}, `${v.version}${v.main ? ' (main)' : ''}`),
      el('td', {}, v.namespaces.join(', ') || '(none)'), el('td', {}, v.path),
      el('td', { title: v.sha256 }, (v.sha256 || '').slice(0, 12))));
  }
  return el('section', { class: 'card plugin', 'data-plugin': p.name },
    el('h2', {}, `${p.name} ${p.version}`),
    el('p', { class: 'muted' }, `ABI ${p.abi} · ${p.path} · loaded by ${p.loaded_by}`),
    el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'version'), el('th', {}, 'namespaces'),
      el('th', {}, 'file'), el('th', {}, 'sha256'))), versions),
    el('table', {}, el('thead', {}, el('tr', {}, el('th', {}, 'actor type'), el('th', {}, 'schema'),
      el('th', {}, 'commands'), el('th', {}, 'events'))), types),
    el('div', { class: 'row' },
      el('button', { type: 'button', class: 'reload', onclick: swap({}) }, 'Reload'),
      el('button', { type: 'button', class: 'secondary rollback', onclick: swap({ to: 'previous' }) }, 'Roll back')),
    out);
}

export function mount(root) {
  const list = el('div', { id: 'plugin-list' });
  const versions = el('p', { class: 'muted', id: 'plugin-summary' });
  root.append(versions, list);
  const load = async () => {
    const r = await api('/v1/plugins');
    if (!r.ok) { versions.textContent = errorText(r); return; }
    versions.textContent = r.body.plugins.map((p) => `${p.name} ${p.version}`).join(' · ');
    // Keep the cards (and their reports); refresh the summary only.
    if (!list.childElementCount) list.append(...r.body.plugins.map((p) => plugin(p, load)));
  };
  load();
}
