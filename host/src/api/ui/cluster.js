// Cluster: the nodes, the shard map as a grid coloured by owner, and the
// migrations in flight, polled every second.
import { api, el, errorText } from './api.js';

const PALETTE = ['#2563eb', '#16a34a', '#ea580c', '#9333ea', '#0891b2', '#ca8a04', '#db2777', '#4b5563'];

export function mount(root) {
  const head = el('p', { id: 'cluster-head', class: 'muted' });
  const nodes = el('tbody', { id: 'cluster-nodes' });
  const legend = el('div', { class: 'legend', id: 'cluster-legend' });
  const grid = el('div', { class: 'grid', id: 'shard-grid' });
  const migrations = el('tbody', { id: 'cluster-migrations' });
  root.append(head,
    el('section', { class: 'card' }, el('h2', {}, 'Nodes'),
      el('table', {}, el('thead', {}, el('tr', {}, ...['node', 'ingress', 'leader', 'active actors', 'commands/s',
        'shards', 'leaving'].map((h) => el('th', {}, h)))), nodes)),
    el('section', { class: 'card' }, el('h2', {}, 'Shard map'), legend, grid),
    el('section', { class: 'card' }, el('h2', {}, 'Migrations in flight'),
      el('table', {}, el('thead', {}, el('tr', {}, ...['shard', 'from', 'to', 'state'].map((h) => el('th', {}, h)))),
        migrations)));
  const last = new Map();  // node -> {commands, at}
  const colours = new Map();
  const colour = (id) => {
    if (!id) return '#e5e7eb';
    if (!colours.has(id)) colours.set(id, PALETTE[colours.size % PALETTE.length]);
    return colours.get(id);
  };

  function rate(n, now) {
    const prev = last.get(n.id);
    last.set(n.id, { commands: n.commands, at: now });
    if (!prev || n.commands === undefined) return '';
    return ((n.commands - prev.commands) / Math.max(0.001, (now - prev.at) / 1000)).toFixed(1);
  }

  function drawGrid(owners) {
    if (grid.childElementCount !== owners.length) {
      grid.replaceChildren(...owners.map((_, i) => el('span', { 'data-shard': i })));
    }
    owners.forEach((o, i) => {
      const cell = grid.children[i];
      if (cell.dataset.owner === o) return;
      cell.dataset.owner = o;
      cell.style.background = colour(o);
      cell.title = `shard ${i}: ${o || 'no owner'}`;
    });
  }

  async function poll() {
    const r = await api('/v1/cluster');
    if (!r.ok) { head.textContent = errorText(r); return; }
    const c = r.body;
    const now = performance.now();
    if (c.mode !== 'cluster') {
      head.textContent = `single node ${c.leader}: it owns every actor`;
      nodes.replaceChildren(...c.nodes.map((n) => el('tr', { 'data-node': n.id }, el('td', {}, n.id), el('td', {}, location.host),
        el('td', {}, 'yes'), el('td', {}, ''), el('td', {}, ''), el('td', {}, 'all'), el('td', {}, 'no'))));
      return;
    }
    head.textContent = `seen from ${c.node} · leader ${c.leader} · epoch ${c.epoch} · ${c.shards} shards` +
      (c.unowned_shards ? ` · ${c.unowned_shards} without owner` : '');
    grid.dataset.epoch = c.epoch;
    nodes.replaceChildren(...c.nodes.map((n) => el('tr', { 'data-node': n.id },
      el('td', {}, el('span', { class: 'legend' }, el('span', { class: 'swatch', style: `background:${colour(n.id)}` })), n.id),
      el('td', {}, n.ingress || ''), el('td', {}, n.leader ? 'yes' : ''), el('td', {}, n.active_actors ?? ''),
      el('td', {}, rate(n, now)), el('td', {}, n.shards ?? ''), el('td', {}, n.leaving ? 'leaving' : ''))));
    legend.replaceChildren(...c.nodes.map((n) => el('span', {}, el('span', { class: 'swatch', style: `background:${colour(n.id)}` }), n.id)));
    drawGrid(c.owners || []);
    grid.dataset.owners = JSON.stringify(c.owners || []);
    migrations.replaceChildren(...c.migrations.map((m) => el('tr', {}, el('td', {}, m.shard), el('td', {}, m.from),
      el('td', {}, m.to), el('td', {}, m.state))));
    if (!c.migrations.length) migrations.append(el('tr', {}, el('td', { colspan: 4, class: 'muted' }, 'none')));
  }

  poll();
  const timer = setInterval(poll, 1000);
  return () => clearInterval(timer);
}
