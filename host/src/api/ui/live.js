// Live events: a tail of the commits of a namespace (GET .../events/stream),
// filterable by type and id, with pause and clear.
import { el, streamEvents } from './api.js';

const MAX_ROWS = 500;

export function mount(root) {
  const ns = el('input', { id: 'live-ns', value: 'default', size: 10 });
  const type = el('input', { id: 'live-type', placeholder: 'any type', size: 12 });
  const id = el('input', { id: 'live-id', placeholder: 'any id', size: 12 });
  const apply = el('button', { id: 'live-apply', type: 'button' }, 'Apply');
  const pause = el('button', { id: 'live-pause', class: 'secondary', type: 'button' }, 'Pause');
  const clear = el('button', { id: 'live-clear', class: 'secondary', type: 'button' }, 'Clear');
  const subject = el('code', { id: 'live-subject' });
  const status = el('span', { id: 'live-status', class: 'muted' });
  const tail = el('div', { id: 'live-tail', class: 'tail' });
  let paused = false;
  let held = 0;
  let abort = null;

  root.append(el('section', { class: 'card' }, el('h2', {}, 'Live events'),
    el('div', { class: 'row' }, el('label', {}, 'namespace', ns), el('label', {}, 'type', type),
      el('label', {}, 'id', id), apply, pause, clear),
    el('p', {}, 'subject ', subject, ' · ', status), tail));

  function onCommit(c) {
    if (paused) { held++; status.textContent = `paused (${held} commits not shown)`; return; }
    const events = c.events.map((e) => `${e.type} ${JSON.stringify(e.payload)}`).join(', ');
    const when = new Date(c.timestamp).toLocaleTimeString();
    tail.prepend(el('div', { class: 'commit', 'data-actor': `${c.type}/${c.actor_id}`, 'data-version': c.version },
      `${when}  ${c.type}/${c.actor_id}  v${c.first_version}..${c.version}  ${events}  (${c.node})`));
    while (tail.childElementCount > MAX_ROWS) tail.lastElementChild.remove();
  }

  function connect() {
    if (abort) abort.abort();
    abort = new AbortController();
    subject.textContent = `aether.${ns.value}.events.${type.value || '*'}.${id.value || '*'}`;
    const q = new URLSearchParams();
    if (type.value) q.set('type', type.value);
    if (id.value) q.set('id', id.value);
    streamEvents(`/v1/${encodeURIComponent(ns.value)}/events/stream?${q}`, abort.signal, onCommit,
      (s) => { status.textContent = s; status.dataset.state = s; });
  }

  apply.addEventListener('click', connect);
  pause.addEventListener('click', () => {
    paused = !paused;
    held = 0;
    pause.textContent = paused ? 'Resume' : 'Pause';
    status.textContent = paused ? 'paused' : 'connected';
  });
  clear.addEventListener('click', () => tail.replaceChildren());
  connect();
  return () => abort && abort.abort();
}
