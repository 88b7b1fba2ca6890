// The console's shell: a view per tab (location.hash), one mounted at a time.
import * as cluster from './cluster.js';
import * as plugins from './plugins.js';
import * as explorer from './explorer.js';
import * as live from './live.js';
import * as metrics from './metrics.js';

const views = { cluster, plugins, explorer, live, metrics };
let unmount = null;

function show() {
  const name = (location.hash || '#cluster').slice(1).split('?')[0];
  const view = views[name] || cluster;
  if (unmount) unmount();
  const main = document.getElementById('view');
  main.replaceChildren();
  main.dataset.view = name;
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.view === name);
  unmount = view.mount(main) || null;
}

window.addEventListener('hashchange', show);
metrics.startSampling();
show();
