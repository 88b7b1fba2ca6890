// Calls to the host's API: the bearer token (asked once, kept in this tab's
// session storage), JSON in and out, and the event stream read with fetch
// (an EventSource cannot send the token).
const KEY = 'aether.token';
let asking = null;

export function token() { return sessionStorage.getItem(KEY) || ''; }

function headers(extra = {}) {
  const h = { ...extra };
  if (token()) h.Authorization = 'Bearer ' + token();
  return h;
}

// Shows the token dialog once; resolves when a token was entered.
function askToken() {
  if (asking) return asking;
  asking = new Promise((resolve) => {
    const dialog = document.getElementById('token-dialog');
    const form = document.getElementById('token-form');
    const input = document.getElementById('token-input');
    form.addEventListener('submit', () => {
      sessionStorage.setItem(KEY, input.value.trim());
      input.value = '';
      asking = null;
      resolve();
    }, { once: true });
    dialog.showModal();
  });
  return asking;
}

// {status, ok, body}: body parsed as JSON when it is JSON, else text.
export async function api(path, { method = 'GET', body } = {}) {
  for (let attempt = 0; attempt < 5; attempt++) {
    const init = { method, headers: headers(body === undefined ? {} : { 'Content-Type': 'application/json' }) };
    if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
    const r = await fetch(path, init);
    if (r.status === 401) { await askToken(); continue; }
    const text = await r.text();
    let parsed = text;
    try { parsed = JSON.parse(text); } catch { /* text */ }
    return { status: r.status, ok: r.ok, body: parsed };
  }
  throw new Error('the token was refused five times');
}

// The message of an error reply, or the reply as text.
export function errorText(reply) {
  const e = reply && reply.body && reply.body.error;
  return e ? `${reply.status} ${e.code}: ${e.message}` : `${reply.status}: ${JSON.stringify(reply.body)}`;
}

// Reads GET /v1/{ns}/events/stream until `signal` aborts, reconnecting after
// a second when it ends. Calls onCommit(commit) and onStatus(text).
export async function streamEvents(query, signal, onCommit, onStatus) {
  while (!signal.aborted) {
    try {
      const r = await fetch(query, { headers: headers(), signal });
      if (r.status === 401) { await askToken(); continue; }
      if (!r.ok) { onStatus(`stream refused: ${r.status} ${await r.text()}`); }
      else {
        onStatus('connected');
        await readFrames(r.body, onCommit, onStatus);
        onStatus('stream ended; reconnecting');
      }
    } catch (e) {
      if (signal.aborted) return;
      onStatus('stream error: ' + e.message);
    }
    await new Promise((res) => setTimeout(res, 1000));
  }
}

async function readFrames(body, onCommit, onStatus) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let end;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      let event = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      if (event === 'commit') onCommit(JSON.parse(data.join('\n')));
      else if (event === 'dropped') onStatus('dropped by the host: ' + data.join('\n'));
    }
  }
}

// A small element factory: el('td', {class: 'x'}, 'text', child...).
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null) e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

export function pretty(v) { return JSON.stringify(v, null, 2); }
