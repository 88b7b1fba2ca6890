// Drives the web console in a headless Chromium (puppeteer-core over the
// DevTools protocol) against a running aether-host. Run by console_test.cpp:
//   node console_test.cjs <node_modules dir> <scenario> <artifacts dir> <json args>
// scenarios: single {url}, token {url, token}, cluster {url, leave_file}.
// Exits 0 when every check passed; prints what it checked and measured.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const puppeteer = require(path.join(process.argv[2], 'node_modules', 'puppeteer-core'));

const [scenario, artifacts, argsJson] = process.argv.slice(3);
const args = JSON.parse(argsJson);
const WAIT = { timeout: 20000 };
const errors = [];

function check(ok, what) {
  if (!ok) throw new Error('check failed: ' + what);
  console.log('ok: ' + what);
}

async function launch() {
  const browser = await puppeteer.launch({
    executablePath: fs.existsSync('/usr/lib/chromium/chromium') ? '/usr/lib/chromium/chromium' : '/usr/bin/chromium',
    headless: true,
    userDataDir: fs.mkdtempSync(path.join(os.tmpdir(), 'aether-chromium-')),
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--window-size=1280,900'],
    defaultViewport: { width: 1280, height: 900 },
  });
  const page = await browser.newPage();
  page.on('pageerror', (e) => errors.push('page error: ' + e.message));
  page.on('console', (m) => { if (m.type() === 'error') errors.push('console error: ' + m.text()); });
  return { browser, page };
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(artifacts, name + '.png'), fullPage: true });
  console.log('screenshot: ' + name + '.png');
}

async function post(url, body, token) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = 'Bearer ' + token;
  const r = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body) });
  return r.status;
}

const text = (page, sel) => page.$eval(sel, (e) => e.textContent);

async function sendFromForm(page, command, payload, expect) {
  await page.select('#ex-command', command);
  await page.$eval('#ex-payload', (e, v) => { e.value = v; }, payload);
  await page.click('#ex-send');
  await page.waitForFunction((x) => document.querySelector('#ex-reply').textContent.includes(x), WAIT, expect);
}

async function explorer(page, url) {
  await page.goto(url + '/ui#explorer', { waitUntil: 'networkidle0' });
  await page.waitForSelector('#ex-type option[value="BankAccount"]', WAIT);
  await page.select('#ex-type', 'BankAccount');
  await page.type('#ex-id', 'acc-ui');
  await sendFromForm(page, 'Open', '{"owner": ', 'payload is not valid');
  check(true, 'the form refuses a payload that is not JSON before sending');
  await sendFromForm(page, 'Open', '{"owner": "Ann"}', '"Opened"');
  await sendFromForm(page, 'Deposit', '{"amount": 100}', '"Deposited"');
  await page.waitForFunction(() => document.querySelectorAll('#ex-events tr').length === 2, WAIT);
  const state = JSON.parse(await text(page, '#ex-state'));
  check(state.balance === 100, 'the state view shows the balance after Open and Deposit: ' + JSON.stringify(state));
  check((await text(page, '#ex-version')) === 'version 2', 'the version is 2');
  const rows = await page.$$eval('#ex-events tr', (trs) => trs.map((t) => t.children[1].textContent));
  check(rows.join(',') === 'Deposited,Opened', 'both events, newest first: ' + rows.join(','));
  await sendFromForm(page, 'Withdraw', '{"amount": 1000}', 'insufficient_funds');
  check(true, 'a refused command shows the API error');
  await shot(page, 'explorer');
}

async function liveTail(page, url, token, account, version) {
  await page.goto(url + '/ui#live', { waitUntil: 'domcontentloaded' });
  await page.waitForFunction(() => document.querySelector('#live-status').dataset.state === 'connected', WAIT);
  const t0 = Date.now();
  check(await post(url + `/v1/default/actors/BankAccount/${account}/commands`, { command: 'Deposit', payload: { amount: 7 } }, token) === 200,
    'a command sent outside the page');
  await page.waitForSelector(`#live-tail .commit[data-actor="BankAccount/${account}"][data-version="${version}"]`, WAIT);
  console.log(`measured: the live tail showed the commit ${Date.now() - t0} ms after the command was sent`);
  await page.click('#live-pause');
  await post(url + '/v1/default/actors/Counter/live-c/commands', { command: 'Increment' }, token);
  await page.waitForFunction(() => document.querySelector('#live-status').textContent.includes('1 commits not shown'), WAIT);
  check(!(await page.$('#live-tail .commit[data-actor="Counter/live-c"]')), 'paused: a new commit is not shown');
  await page.click('#live-pause');
  for (let i = 0; i < 3; i++) await post(url + '/v1/default/actors/Counter/live-c/commands', { command: 'Increment' }, token);
  await page.waitForSelector('#live-tail .commit[data-actor="Counter/live-c"][data-version="4"]', WAIT);
  await shot(page, 'live');
  await page.click('#live-clear');
  check((await page.$$('#live-tail .commit')).length === 0, 'clear empties the tail');
}

async function plugins(page, url) {
  await page.goto(url + '/ui#plugins', { waitUntil: 'networkidle0' });
  await page.waitForSelector('[data-plugin="counter"] .reload', WAIT);
  const versions = await text(page, '[data-plugin="counter"] .versions');
  check(versions.includes('(main)') && versions.includes('default'), 'the card shows which version serves which namespace: ' + versions);
  await page.click('[data-plugin="counter"] .reload');
  await page.waitForSelector('[data-plugin="counter"] .report', WAIT);
  const report = await text(page, '[data-plugin="counter"] .report');
  check(report.includes('actors moved') && report.includes('pause'), 'the reload shows its swap report: ' + report.replace(/\n/g, ' | '));
  await shot(page, 'plugins');
}

async function metrics(page, url) {
  await page.goto(url + '/ui#metrics', { waitUntil: 'domcontentloaded' });
  for (let i = 0; i < 5; i++) await post(url + '/v1/default/actors/Counter/m/commands', { command: 'Increment' }, args.token);
  await page.waitForFunction(() => {
    const now = document.querySelector('[data-chart="latency p50"] .now');
    return now && now.textContent !== 'n/a';
  }, { timeout: 30000 });
  check(true, 'the metrics view draws commands/s and latency from /metrics');
  await shot(page, 'metrics');
}

async function single() {
  const { browser, page } = await launch();
  try {
    await explorer(page, args.url);
    await liveTail(page, args.url, '', 'acc-ui', 3);
    await plugins(page, args.url);
    await metrics(page, args.url);
    await page.goto(args.url + '/ui#cluster', { waitUntil: 'domcontentloaded' });
    await page.waitForFunction(() => document.querySelector('#cluster-head').textContent.includes('single node'), WAIT);
    await shot(page, 'cluster-single');
  } finally {
    await browser.close();
  }
  // The browser logs the deliberately refused Withdraw (422) as a failed load.
  const other = errors.filter((e) => !e.includes('status of 422'));
  check(other.length === 0, 'no console errors but the refused command' + (other.length ? ': ' + other.join('; ') : ''));
}

async function token() {
  const url = args.url;
  for (const p of ['/v1/plugins', '/v1/cluster', '/metrics', '/v1/default/actors/Counter/x', '/v1/default/events/stream']) {
    const r = await fetch(url + p);
    check(r.status === 401, `GET ${p} without the token: ${r.status}`);
    if (r.body) await r.body.cancel();
  }
  check(await post(url + '/v1/default/actors/Counter/x/commands', { command: 'Increment' }) === 401, 'POST a command without the token: 401');
  check(await post(url + '/v1/plugins/counter/reload', {}) === 401, 'POST a reload without the token: 401');
  const { browser, page } = await launch();
  try {
    await page.goto(url + '/ui#explorer', { waitUntil: 'domcontentloaded' });
    await page.waitForSelector('#token-dialog[open]', WAIT);
    await shot(page, 'token');
    await page.type('#token-input', args.token);
    await page.click('#token-save');
    await page.waitForSelector('#ex-type option[value="BankAccount"]', WAIT);
    await page.select('#ex-type', 'BankAccount');
    await page.type('#ex-id', 'acc-token');
    await sendFromForm(page, 'Open', '{"owner": "Tom"}', '"Opened"');
    check(await page.evaluate(() => sessionStorage.getItem('aether.token')) === args.token, 'the token is kept in session storage');
    await page.reload({ waitUntil: 'networkidle0' });
    await page.waitForSelector('#ex-type option[value="BankAccount"]', WAIT);
    check(!(await page.$('#token-dialog[open]')), 'after a reload the token is not asked again');
    await liveTail(page, url, args.token, 'acc-token', 2);
  } finally {
    await browser.close();
  }
  const other = errors.filter((e) => !e.includes('401'));
  check(other.length === 0, 'no console errors but the refused calls before the token' + (other.length ? ': ' + other.join('; ') : ''));
}

// The owners the page's shard grid shows, and /v1/cluster's.
async function owners(page, url) {
  const shown = await page.$$eval('#shard-grid span', (s) => s.map((c) => c.dataset.owner));
  const c = await (await fetch(url + '/v1/cluster')).json();
  return { shown, actual: c.owners, nodes: c.nodes.length };
}

async function gridMatches(page, url, nodes, seconds) {
  for (let i = 0; i < seconds * 2; i++) {
    const o = await owners(page, url);
    const distinct = new Set(o.shown);
    if (o.nodes === nodes && distinct.size === nodes && !distinct.has('') &&
        JSON.stringify(o.shown) === JSON.stringify(o.actual)) return o;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`the grid does not show ${nodes} owners matching /v1/cluster within ${seconds} s`);
}

// The tail on one node shows a commit made through another (the events
// subject over NATS carries every node's commits).
async function clusterTail(page) {
  await page.goto(args.url + '/ui#live', { waitUntil: 'domcontentloaded' });
  await page.waitForFunction(() => document.querySelector('#live-status').dataset.state === 'connected', WAIT);
  for (let i = 0; i < 5; i++) {
    check(await post(args.other_url + `/v1/default/actors/Counter/tail-${i}/commands`, { command: 'Increment' }) === 200,
      `command ${i} sent to another node`);
  }
  await page.waitForFunction(() => document.querySelectorAll('#live-tail .commit').length === 5, WAIT);
  const nodes = await page.$$eval('#live-tail .commit', (cs) => cs.map((c) => c.textContent.match(/\((node-\d)\)$/)[1]));
  check(true, 'the live tail of node-1 shows the 5 commits made through node-2, run by ' + [...new Set(nodes)].sort().join(', '));
  await shot(page, 'cluster-live');
}

async function cluster() {
  const { browser, page } = await launch();
  try {
    await clusterTail(page);
    await page.goto(args.url + '/ui#cluster', { waitUntil: 'domcontentloaded' });
    await page.waitForFunction(() => document.querySelectorAll('#cluster-nodes tr').length === 3, WAIT);
    check(true, 'the Cluster view shows three nodes');
    const before = await gridMatches(page, args.url, 3, 30);
    check(true, `the shard grid (${before.shown.length} shards) matches /v1/cluster with 3 owners`);
    await shot(page, 'cluster');
    await page.evaluate(() => { window.notReloaded = true; });
    fs.writeFileSync(args.leave_file, 'leave');
    const after = await gridMatches(page, args.url, 2, 120);
    const moved = after.shown.filter((o, i) => o !== before.shown[i]).length;
    check(await page.evaluate(() => window.notReloaded === true), 'the page was not reloaded');
    check(moved > 0, `after a node left the grid changed to the new owners (${moved} shards moved)`);
    await page.waitForFunction(() => document.querySelectorAll('#cluster-nodes tr').length === 2, WAIT);
    await shot(page, 'cluster-after-leave');
  } finally {
    await browser.close();
  }
  check(errors.length === 0, 'no console errors' + (errors.length ? ': ' + errors.join('; ') : ''));
}

({ single, token, cluster })[scenario]().then(() => process.exit(0), (e) => {
  console.error(e.stack || String(e));
  if (errors.length) console.error('console errors: ' + errors.join('; '));
  process.exit(1);
});
