// Metrics: commands/s, command latency p50/p99 and active actors over the
// last minutes, computed here from the host's own /metrics (sampled every
// two seconds from when the page opened; docs/console.md says why).
import { api, el } from './api.js';

const EVERY_MS = 2000;
const KEEP = 150;  // samples: five minutes
const samples = [];  // {t, commands, buckets: Map(le -> count), active}
const series = { rate: [], p50: [], p99: [], active: [] };
let started = false;
let redraw = null;

// Sums of the samples we draw from, out of the Prometheus text format.
export function parse(text) {
  let commands = 0;
  let active = 0;
  const buckets = new Map();
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !line) continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (line.startsWith('aether_commands_total')) commands += value;
    else if (line.startsWith('aether_active_actors')) active += value;
    else if (line.startsWith('aether_command_duration_seconds_bucket')) {
      const le = line.match(/le="([^"]+)"/)[1];
      buckets.set(le, (buckets.get(le) || 0) + value);
    }
  }
  return { commands, active, buckets };
}

// The q-quantile (seconds) of the commands between two samples, from the
// histogram's buckets (linear inside a bucket), or null with none.
export function quantile(q, before, after) {
  const les = [...after.buckets.keys()].sort((a, b) => Number(a) - Number(b));
  const total = (after.buckets.get('+Inf') || 0) - (before.buckets.get('+Inf') || 0);
  if (total <= 0) return null;
  let prevLe = 0;
  let prevCount = 0;
  for (const le of les) {
    const count = (after.buckets.get(le) || 0) - (before.buckets.get(le) || 0);
    if (count >= q * total) {
      if (le === '+Inf') return prevLe;
      const inside = count - prevCount;
      return prevLe + (Number(le) - prevLe) * (inside > 0 ? (q * total - prevCount) / inside : 1);
    }
    prevLe = le === '+Inf' ? prevLe : Number(le);
    prevCount = count;
  }
  return prevLe;
}

function push(name, t, v) {
  series[name].push({ t, v });
  if (series[name].length > KEEP) series[name].shift();
}

async function sample() {
  const r = await api('/metrics');
  if (!r.ok || typeof r.body !== 'string') return;
  const s = { t: Date.now(), ...parse(r.body) };
  const prev = samples[samples.length - 1];
  samples.push(s);
  if (samples.length > 2) samples.shift();
  push('active', s.t, s.active);
  if (prev) {
    push('rate', s.t, (s.commands - prev.commands) / ((s.t - prev.t) / 1000));
    const p50 = quantile(0.5, prev, s);
    const p99 = quantile(0.99, prev, s);
    push('p50', s.t, p50 === null ? null : p50 * 1000);
    push('p99', s.t, p99 === null ? null : p99 * 1000);
  }
  if (redraw) redraw();
}

export function startSampling() {
  if (started) return;
  started = true;
  sample();
  setInterval(sample, EVERY_MS);
}

function chart(title, points, unit) {
  const w = 400;
  const h = 120;
  const vals = points.filter((p) => p.v !== null);
  const max = Math.max(1e-9, ...vals.map((p) => p.v));
  const t0 = points.length ? points[0].t : 0;
  const span = Math.max(1, (points.length ? points[points.length - 1].t : 1) - t0);
  const xy = vals.map((p) => `${((p.t - t0) / span * (w - 40) + 35).toFixed(1)},${(h - 15 - p.v / max * (h - 30)).toFixed(1)}`);
  if (xy.length === 1) xy.push(`${w},${xy[0].split(',')[1]}`);  // one sample: a flat line
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
  svg.setAttribute('class', 'chart');
  const last = vals.length ? vals[vals.length - 1].v : null;
  svg.innerHTML = `<text x="2" y="12">${max.toFixed(max < 10 ? 2 : 0)} ${unit}</text><text x="2" y="${h - 3}">0</text>` +
    `<line x1="35" x2="${w}" y1="${h - 15}" y2="${h - 15}" stroke="#d8dde3"/>` +
    `<polyline points="${xy.join(' ')}"/>`;
  return el('section', { class: 'card', 'data-chart': title },
    el('h2', {}, `${title}: `, el('span', { class: 'now' }, last === null ? 'n/a' : `${last.toFixed(last < 10 ? 2 : 0)} ${unit}`)), svg);
}

export function mount(root) {
  const box = el('div', { class: 'charts', id: 'charts' });
  root.append(el('p', { class: 'muted' }, `From this host's /metrics every ${EVERY_MS / 1000} s since the page opened ` +
    `(last ${KEEP * EVERY_MS / 60000} minutes kept).`), box);
  redraw = () => box.replaceChildren(
    chart('commands/s', series.rate, '/s'),
    chart('latency p50', series.p50, 'ms'),
    chart('latency p99', series.p99, 'ms'),
    chart('active actors', series.active, ''));
  redraw();
  return () => { redraw = null; };
}
