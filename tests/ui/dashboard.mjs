// dashboard.mjs: the dashboard (services/orchestrator/ui, docs/UI.md) in a real browser:
// Debian's chromium driven by puppeteer-core (tests/npm), against the engine and xero-sim that
// tests/e2e/ui_test.c started. Every step asserts on what the page shows; the engine's side
// of each step (what was stored, what reached Xero) is checked by ui_test.c afterwards from
// the facts this script writes to XS_UI_RESULT.
//
// Environment (set by ui_test.c): XS_UI_API (the orchestrator), XS_UI_KEY (an API key),
// XS_UI_SIM and XS_UI_TENANT (xero-sim and its tenant), XS_UI_CHROMIUM, XS_UI_NODE_MODULES
// (where scripts/npm-tools installed puppeteer-core), XS_UI_SHOTS (screenshots), XS_UI_RESULT;
// XS_CONTRACT_LOG: every reply of the orchestrator the page received is written there too, for
// the api_contract test to validate against docs/openapi.yaml.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createRequire } from 'node:module';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (tests/e2e/ui_test.c sets it)`);
  return v;
};
const API = env('XS_UI_API');
const KEY = env('XS_UI_KEY');
const SIM = env('XS_UI_SIM');
const TENANT = env('XS_UI_TENANT');
const SHOTS = env('XS_UI_SHOTS');
const RESULT = env('XS_UI_RESULT');
const require = createRequire(path.join(env('XS_UI_NODE_MODULES'), 'noop.js'));
const puppeteer = require('puppeteer-core');

const facts = {};
process.on('unhandledRejection', (e) => {
  console.error(`[ui] unhandled: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
const log = (...a) => console.error('[ui]', ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
fs.mkdirSync(SHOTS, { recursive: true });
fs.rmSync(path.join(SHOTS, 'failure.png'), { force: true });

// ---- the engine and the simulator, outside the page ----
async function call(method, url, body, key = KEY) {
  const headers = key ? { Authorization: `Bearer ${key}` } : {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}
const apiCall = (method, p, body) => call(method, API + p, body);
const simCall = (method, p, body) => call(method, SIM + p, body, null);

// ---- the replies the page received, for the contract test ----
const contract = [];
function recordReplies(page, test) {
  page.on('response', (res) => {
    const u = new URL(res.url());
    if (u.origin !== API || !/^\/(v1\/|ui|health|metrics)/.test(u.pathname)) return;
    const status = res.status();
    const rec = { test, method: res.request().method(), url: res.url(), status,
                  content_type: res.headers()['content-type'] || null, body: '', body_not_utf8: false };
    const done = (status >= 300 && status < 400) ? Promise.resolve('')
      : res.text().catch(() => null);
    contract.push(done.then((b) => (b === null ? null : { ...rec, body: b })));
  });
}
// writeContract writes the replies the page received. A reply whose body the browser never
// gives (puppeteer's res.text() can stay unsettled, e.g. for a page reloaded under it) is left
// out after 10 s and counted, rather than left pending: with nothing else to wait for, node
// would end the script there with exit code 13 (an unsettled top-level await).
async function writeContract() {
  const dir = process.env.XS_CONTRACT_LOG;
  const deadline = sleep(10000).then(() => 'late');
  const settled = await Promise.all(contract.map((p) => Promise.race([p, deadline])));
  const late = settled.filter((r) => r === 'late').length;
  const recs = settled.filter((r) => r && r !== 'late');
  if (late > 0) log(`${late} replies whose body the browser never gave were left out`);
  if (dir) {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, `ui-${process.pid}.jsonl`), recs.map((r) => JSON.stringify(r)).join('\n') + '\n');
  }
  log(`${recs.length} replies of the orchestrator written for the contract test`);
}

// ---- page helpers ----
async function shot(page, name) {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}
async function text(page, selector) {
  return page.$eval(selector, (el) => el.textContent.replace(/\s+/g, ' ').trim());
}
async function waitText(page, selector, want, timeout = 20000) {
  try {
    await page.waitForFunction((s, w) => {
      const el = document.querySelector(s);
      return el && el.textContent.replace(/\s+/g, ' ').includes(w);
    }, { timeout, polling: 100 }, selector, want);
  } catch (e) {
    const got = await page.$eval(selector, (el) => el.textContent).catch(() => '(no such element)');
    throw new Error(`waited ${timeout} ms for "${want}" in ${selector}; it shows: ${String(got).replace(/\s+/g, ' ').slice(0, 400)}`);
  }
}
async function go(page, hash) {
  await page.evaluate((h) => { window.location.hash = h; }, hash);
}
async function flash(page, want) {
  await waitText(page, '#flash', want);
}

// press clicks the element selector names once it is there. The pages redraw what they poll
// (a run every second, the connections every ten), so the element found may be replaced just
// before the click lands; then the new one is clicked.
async function press(page, selector) {
  for (let i = 0; ; i++) {
    try {
      await page.waitForSelector(selector);
      await page.click(selector);
      return;
    } catch (e) {
      if (i >= 10 || !/detached|not clickable|not an Element|Execution context was destroyed/i.test(e.message)) throw e;
      await sleep(100);
    }
  }
}

// labelled checks that every control on the page has a label a screen reader reads out.
async function labelled(page, where) {
  const bare = await page.$$eval('input:not([type=hidden]), select, textarea', (els) => els
    .filter((el) => el.labels.length === 0 && !el.getAttribute('aria-label'))
    .map((el) => el.outerHTML.slice(0, 120)));
  assert.deepEqual(bare, [], `controls without a label on ${where}`);
}

let stepNo = 0;
async function step(name, fn) {
  stepNo++;
  const t0 = Date.now();
  log(`step ${stepNo}: ${name}`);
  await fn();
  log(`step ${stepNo}: ok in ${Date.now() - t0} ms`);
}

// until calls fn every `every` ms until it returns something truthy, and returns that; after
// timeout ms it fails, saying `what` (a function of fn's last answer, or a string).
async function until(timeout, every, what, fn) {
  const end = Date.now() + timeout;
  for (;;) {
    const got = await fn();
    if (got) return got;
    if (Date.now() > end) throw new Error(typeof what === 'function' ? what() : what);
    await sleep(every);
  }
}

// pendingCards reloads the pending conflicts until every selector in cards is shown.
async function pendingCards(page, cards, what) {
  await until(60000, 1000, what, async () => {
    await go(page, `#/conflicts?status=PENDING&t=${Date.now()}`);
    await page.waitForSelector('#conflicts');
    for (const c of cards) if (!(await page.$(c))) return false;
    return true;
  });
}

// watchRun follows the run page until the run ends and returns what its bars showed.
async function watchRun(page, runId) {
  await go(page, `#/runs/${runId}`);
  await page.waitForSelector('#run-facts');
  const seen = [];
  const end = Date.now() + 120000;
  for (;;) {
    const now = await page.evaluate(() => ({
      status: document.querySelector('#run-facts')?.dataset.status,
      bars: [...document.querySelectorAll('#run-progress .bar')].map((b) => ({
        entity: b.dataset.entity, state: b.dataset.state, pct: b.dataset.pct,
        value: b.querySelector('progress')?.value, text: b.textContent.replace(/\s+/g, ' ') })),
    }));
    seen.push(now);
    if (now.status && !['queued', 'running'].includes(now.status)) {
      // The page stops polling at the end; the last render is the end.
      return seen;
    }
    if (Date.now() > end) throw new Error(`run ${runId} did not end: ${JSON.stringify(now)}`);
    await sleep(200);
  }
}

const browser = await puppeteer.launch({
  executablePath: env('XS_UI_CHROMIUM'),
  headless: true,
  // As root (CI), chromium's sandbox cannot start; the pages are our own.
  args: [...(process.getuid && process.getuid() === 0 ? ['--no-sandbox'] : []),
         '--disable-dev-shm-usage', '--disable-gpu', '--lang=en-GB', '--window-size=1280,900'],
  env: { ...process.env, TZ: 'UTC' },
});
let failed = false;
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  const problems = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of 40[019]|status of 409/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  recordReplies(page, 'e2e_ui');

  await step('without a key the page shows nothing but the sign-in', async () => {
    const res = await page.goto(`${API}/ui/`, { waitUntil: 'networkidle0' });
    assert.equal(res.status(), 200);
    const h = res.headers();
    assert.match(h['content-security-policy'], /frame-ancestors 'none'/);
    assert.match(h['content-security-policy'], /script-src 'self'/);
    assert.equal(h['x-frame-options'], 'DENY');
    await page.waitForSelector('#signin');
    assert.equal(await page.$eval('#nav', (n) => n.hidden), true);
    assert.equal(await page.$('#organisations'), null);
    // The routes the page would read answer nothing without the key.
    const got = await page.evaluate(async () => Promise.all(
      ['/v1/organisations', '/v1/connections', '/v1/runs', '/v1/conflicts'].map(async (p) => {
        const r = await fetch(p);
        return [p, r.status, (await r.text()).slice(0, 200)];
      })));
    for (const [p, status, body] of got) {
      assert.equal(status, 401, `${p} without a key: ${status} ${body}`);
      assert.doesNotMatch(body, /tenant|organisation_id/, `${p} leaked data without a key`);
    }
    await shot(page, 'sign-in');
  });

  await step('a wrong key is refused; the right one signs in', async () => {
    await page.type('#signin input[name=key]', 'not-the-key-0123456789');
    await press(page, '#signin button[type=submit]');
    await waitText(page, '#signin-error', 'The engine does not know this key.');
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    // By keyboard: the key field has the focus again; Enter signs in.
    assert.equal(await page.evaluate(() => document.activeElement.name), 'key');
    await page.$eval('#signin input[name=key]', (el) => { el.value = ''; });
    await page.keyboard.type(KEY);
    await page.keyboard.press('Enter');
    await page.waitForSelector('#new-organisation');
    assert.equal(await page.$eval('#nav', (n) => n.hidden), false);
    // Kept in this tab's session storage, never in the address.
    assert.equal(await page.evaluate(() => sessionStorage.getItem('xero-sync.api-key')), KEY);
    assert.ok(!page.url().includes(KEY));
    // A reload keeps the tab signed in.
    await page.reload({ waitUntil: 'networkidle0' });
    await page.waitForSelector('#new-organisation');
  });

  await step('money is kept exact as the engine wrote it', async () => {
    const out = await page.evaluate(async () => {
      const m = await import('./api.js');
      return JSON.stringify(m.parse('{"a":100.10,"b":12345678901234567.89,"c":5,"d":[0.1]}'));
    });
    assert.equal(out, '{"a":100.10,"b":12345678901234567.89,"c":5,"d":[0.1]}');
  });

  await step('an organisation is added, with the API\'s message for a bad name', async () => {
    await page.type('#new-organisation input[name=name]', '   ');
    await press(page, '#new-organisation button[type=submit]');
    await page.waitForSelector('#new-organisation input[aria-invalid=true]');
    assert.match(await text(page, '#new-organisation .field-error'), /name/);
    await page.$eval('#new-organisation input[name=name]', (el) => { el.value = ''; });
    await page.type('#new-organisation input[name=name]', 'Harbour Physio');
    await press(page, '#new-organisation button[type=submit]');
    await flash(page, 'Added Harbour Physio');
    await waitText(page, '#organisations', 'Harbour Physio');
    facts.organisation_id = await page.$eval('section.organisation', (s) => s.dataset.organisation);
  });

  await step('connecting goes through Xero\'s consent and back', async () => {
    await Promise.all([page.waitForNavigation(), press(page, 'section.organisation [data-action=connect]')]);
    assert.ok(page.url().startsWith(`${SIM}/identity/connect/authorize?`), page.url());
    assert.match(await page.title(), /Allow access/);
    assert.equal(await page.$$eval('input[name=tenant]', (b) => b.filter((x) => x.checked).length), 1);
    await shot(page, 'consent');
    await Promise.all([page.waitForNavigation({ waitUntil: 'networkidle0' }), press(page, '#allow')]);
    assert.ok(page.url().startsWith(`${API}/ui/#/connections`), page.url());
    await flash(page, 'Connected 1 Xero organisation.');
    await page.waitForSelector('article.connection[data-status=active]');
    facts.connection_id = await page.$eval('article.connection', (a) => a.dataset.connection);
    await waitText(page, 'article.connection', 'Budget left');
    await labelled(page, 'the connections');
  });

  await step('the initial import\'s bars go to 100%', async () => {
    // The scheduler starts it soon after the connection is made.
    const runs = await until(30000, 200, 'the connect started no import', async () => {
      const r = await apiCall('GET', `/v1/runs?connection_id=${facts.connection_id}`);
      assert.equal(r.status, 200);
      return r.json.runs.length >= 1 && r;
    });
    const seen = await watchRun(page, runs.json.runs[runs.json.runs.length - 1].id);
    const last = seen[seen.length - 1];
    assert.equal(last.status, 'succeeded', JSON.stringify(last));
  });

  await step('sync now (full, contacts) shows its bars moving to 100%', async () => {
    await go(page, '#/connections');
    await page.waitForSelector('article.connection [data-action=sync]');
    await press(page, 'article.connection [data-action=sync]');
    await page.select('article.connection .sync-form select[name=mode]', 'full');
    await press(page, 'article.connection .sync-form input[value=contact]');
    await Promise.all([
      page.waitForFunction(() => /^#\/runs\/[0-9a-f-]{36}$/.test(window.location.hash), { timeout: 10000 }),
      press(page, 'article.connection [data-action=start-sync]'),
    ]);
    const runId = await page.evaluate(() => window.location.hash.slice('#/runs/'.length));
    facts.full_run_id = runId;
    const seen = await watchRun(page, runId);
    const last = seen[seen.length - 1];
    assert.equal(last.status, 'succeeded', JSON.stringify(last));
    assert.ok(last.bars.length >= 1);
    for (const b of last.bars) {
      assert.equal(b.pct, '100', `bar ${b.entity} ended at ${b.text}`);
      assert.equal(b.value, 100);
      assert.match(b.text, /100% · done/);
    }
    // Seen on its way: a contact bar below 100% before the end.
    const moving = seen.filter((s) => s.bars.some((b) => b.entity === 'contact' && b.pct !== '100'));
    assert.ok(moving.length > 0, `the bars were never seen below 100%: ${JSON.stringify(seen.slice(0, 3))}`);
    log(`bars seen ${seen.length} times, ${moving.length} below 100%: ${moving.map((s) => s.bars.map((b) => b.pct).join('/')).join(' ')}`);
    await shot(page, 'run');
    await go(page, '#/runs');
    await page.waitForSelector(`tr[data-run="${runId}"][data-status=succeeded]`);
    await labelled(page, 'the runs');
    await shot(page, 'runs');
  });

  await step('a running run is cancelled from its page', async () => {
    const r = await apiCall('POST', `/v1/connections/${facts.connection_id}/sync`, { mode: 'full', entities: ['contact'] });
    assert.equal(r.status, 202, JSON.stringify(r.json));
    await go(page, `#/runs/${r.json.id}`);
    await page.waitForSelector('#run-facts[data-status=running]');
    await page.waitForSelector('[data-action=cancel-run]');
    await press(page, '[data-action=cancel-run]');
    await flash(page, 'ancel');
    await page.waitForSelector('#run-facts[data-status=canceled]', { timeout: 30000 });
    await waitText(page, '#run-facts', 'canceled by the API');
  });

  await step('a setting refused by the API shows its message beside the field; then it saves', async () => {
    await go(page, '#/connections');
    await page.waitForSelector('article.connection [data-action=settings]');
    await press(page, 'article.connection [data-action=settings]');
    await page.waitForSelector('#settings-form');
    await labelled(page, 'the settings');
    const policy = '#settings-form [data-field="conflict_policy.contact"]';
    await page.select(policy, 'manual');
    const matching = '#settings-form [data-field="matching.contact"]';
    await page.$eval(matching, (el) => { el.value = ''; });
    await page.type(matching, 'email, shoe_size');
    await press(page, '[data-action=save-settings]');
    await page.waitForSelector(`${matching}[aria-invalid=true]`);
    const msg = await page.$eval(matching, (el) => document.getElementById(`${el.id}-error`).textContent);
    assert.match(msg, /cannot match on/);
    await flash(page, 'Not saved');
    await shot(page, 'settings');
    await page.$eval(matching, (el) => { el.value = ''; });
    await page.type(matching, 'email, name');
    await page.$eval('#settings-form [data-field="schedule.incremental.every_minutes"]', (el) => { el.value = ''; });
    await page.type('#settings-form [data-field="schedule.incremental.every_minutes"]', '30');
    // The documents' folder and XPM's "needs documents" states; a webhook URL the API refuses
    // first (XPM itself stays off: this connection was not authorised with XPM).
    await page.$eval('#files-folder', (el) => { el.value = ''; });
    await page.type('#files-folder', 'Dashboard Uploads');
    await page.type('#xpm-needs', 'Waiting on Client, Awaiting Documents');
    await page.type('#xpm-webhook', 'ftp://hooks.example');
    await press(page, '[data-action=save-settings]');
    await page.waitForSelector('#xpm-webhook[aria-invalid=true]');
    assert.match(await page.$eval('#xpm-webhook-error', (el) => el.textContent), /http:\/\/ or https:\/\//);
    await page.$eval('#xpm-webhook', (el) => { el.value = ''; });
    await press(page, '[data-action=save-settings]');
    await flash(page, 'Saved the settings');
    assert.equal(await page.$$eval('#settings-form [aria-invalid=true]', (l) => l.length), 0);
  });

  await step('a conflict made on both sides is shown field by field and merged', async () => {
    const list = await simCall('GET', `/_sim/tenants/${TENANT}/Contacts?page=1&pageSize=1`);
    const xc = list.json.Contacts[0];
    const m = await apiCall('GET', `/v1/mappings?entity=contact&xero_id=${xc.ContactID}`);
    assert.equal(m.json.mappings.length, 1, JSON.stringify(m.json));
    facts.conflict_local_id = m.json.mappings[0].local_id;
    facts.conflict_xero_id = xc.ContactID;
    // Xero's side: the name and the first name; ours: the name and the e-mail.
    const x = await simCall('POST', `/_sim/tenants/${TENANT}/Contacts/${xc.ContactID}`, { Name: 'Harbour Physio (Xero)', FirstName: 'Xena' });
    assert.equal(x.status, 200, JSON.stringify(x.json));
    const l = await apiCall('PATCH', `/v1/contacts/${facts.conflict_local_id}`, { name: 'Harbour Physio (local)', email: 'front-desk@harbour.example' });
    assert.equal(l.status, 200, JSON.stringify(l.json));
    // The realtime push reads Xero's version first and holds the record for a person.
    const card = 'article.conflict[data-status=PENDING]';
    await pendingCards(page, [card], 'no conflict appeared');
    await waitText(page, `${card} h2`, 'contact Harbour Physio (local)');
    const rows = await page.$$eval(`${card} table.diff tbody tr`, (trs) => trs.map((tr) => ({
      field: tr.dataset.field, clash: tr.classList.contains('clash'),
      changed: [...tr.querySelectorAll('td.changed')].map((td) => td.dataset.side),
      cells: [...tr.querySelectorAll('td[data-side]')].map((td) => td.textContent.replace('changed: ', '')) })));
    const row = (f) => rows.find((r) => r.field === f) || assert.fail(`no row ${f}: ${JSON.stringify(rows)}`);
    assert.deepEqual(row('name').changed, ['local', 'xero']);
    assert.equal(row('name').clash, true);
    assert.equal(row('name').cells[1], 'Harbour Physio (local)');
    assert.equal(row('name').cells[2], 'Harbour Physio (Xero)');
    assert.deepEqual(row('email').changed, ['local']);
    assert.deepEqual(row('first_name').changed, ['xero']);
    assert.equal(await page.$eval('#conflict-count', (e) => e.textContent), '1');
    await labelled(page, 'the conflicts');
    await shot(page, 'conflict');
    // Merge: Xero's name, our e-mail (the default: the side that changed), Xero's first name.
    const id = await page.$eval(card, (a) => a.dataset.conflict);
    facts.conflict_id = id;
    await press(page, `${card} input[type=radio][data-field=name][value=xero]`);
    assert.equal(await page.$eval(`${card} input[type=radio][data-field=email][value=local]`, (r) => r.checked), true);
    assert.equal(await page.$eval(`${card} input[type=radio][data-field=first_name][value=xero]`, (r) => r.checked), true);
    await press(page, `${card} [data-action=merge]`);
    await flash(page, 'merged');
    facts.merged = { name: 'Harbour Physio (Xero)', email: 'front-desk@harbour.example', first_name: 'Xena' };
    // The flash leads to the push that sends the merge: the run, or the connection's runs.
    await page.waitForSelector('#resolution-run');
    await press(page, '#resolution-run');
    await page.waitForFunction(() => /^#\/runs/.test(window.location.hash));
    let got = {};
    await until(60000, 300, () => `Xero never got the merge: ${JSON.stringify(got).slice(0, 300)}`, async () => {
      got = (await simCall('GET', `/_sim/tenants/${TENANT}/Contacts/${xc.ContactID}`)).json?.Contacts?.[0] || {};
      return got.Name === facts.merged.name && got.EmailAddress === facts.merged.email && got.FirstName === 'Xena';
    });
    if (/^#\/runs\/[0-9a-f-]{36}$/.test(await page.evaluate(() => window.location.hash))) {
      const seen = await watchRun(page, await page.evaluate(() => window.location.hash.slice('#/runs/'.length)));
      assert.equal(seen[seen.length - 1].status, 'succeeded');
    } else {
      await page.waitForFunction(() => [...document.querySelectorAll('tr[data-run]')].some((tr) =>
        tr.dataset.status === 'succeeded' && tr.children[2].textContent === 'push'), { timeout: 10000, polling: 200 });
    }
    await go(page, '#/conflicts?status=RESOLVED');
    await page.waitForSelector(`article.conflict[data-conflict="${id}"][data-status=RESOLVED]`);
    await waitText(page, `article.conflict[data-conflict="${id}"]`, 'Resolution: MERGED by dashboard');
  });

  await step('conflicts settled by keeping Xero\'s version, and by ignoring', async () => {
    // Two more contacts, each edited on both sides (the same field: a conflict under manual).
    const list = await simCall('GET', `/_sim/tenants/${TENANT}/Contacts?page=2&pageSize=2`);
    const made = [];
    for (const [i, xc] of list.json.Contacts.entries()) {
      const m = await apiCall('GET', `/v1/mappings?entity=contact&xero_id=${xc.ContactID}`);
      const lid = m.json.mappings[0].local_id;
      const x = await simCall('POST', `/_sim/tenants/${TENANT}/Contacts/${xc.ContactID}`, { FirstName: `Xero${i}` });
      assert.equal(x.status, 200, JSON.stringify(x.json));
      const l = await apiCall('PATCH', `/v1/contacts/${lid}`, { first_name: `Local${i}` });
      assert.equal(l.status, 200, JSON.stringify(l.json));
      made.push({ lid, xid: xc.ContactID });
    }
    const card = (lid) => `article.conflict[data-status=PENDING][data-local="${lid}"]`;
    await pendingCards(page, made.map((m) => card(m.lid)), 'the two conflicts did not appear');
    await press(page, `${card(made[0].lid)} [data-action=keep-xero]`);
    await flash(page, 'kept Xero\'s version');
    await press(page, `${card(made[1].lid)} [data-action=ignore]`);
    await flash(page, 'ignored');
    await page.waitForFunction((a, b) => !document.querySelector(a) && !document.querySelector(b),
      { timeout: 15000 }, card(made[0].lid), card(made[1].lid));
    await go(page, '#/conflicts?status=IGNORED');
    await page.waitForSelector(`article.conflict[data-status=IGNORED][data-local="${made[1].lid}"]`);
    facts.kept_xero = { ...made[0], first_name: 'Xero0' };
    facts.ignored = { ...made[1], local: 'Local1', xero: 'Xero1' };
  });

  await step('an item error names its record and leads to its mappings', async () => {
    // Xero refuses a name another of its contacts has: the push fails that record.
    const two = await simCall('GET', `/_sim/tenants/${TENANT}/Contacts?page=1&pageSize=2&order=Name`);
    const taken = two.json.Contacts.find((c) => c.ContactID !== facts.conflict_xero_id).Name;
    const bad = await apiCall('PATCH', `/v1/contacts/${facts.conflict_local_id}`, { name: taken });
    assert.equal(bad.status, 200, JSON.stringify(bad.json));
    let seenRuns = [];
    const run = await until(60000, 500, () => `no partial push: ${JSON.stringify(seenRuns)}`, async () => {
      const r = await apiCall('GET', `/v1/runs?connection_id=${facts.connection_id}&limit=5`);
      seenRuns = r.json.runs.map((x) => [x.mode, x.status]);
      return r.json.runs.find((x) => x.mode === 'push' && x.status === 'partial');
    });
    await go(page, `#/runs/${run.id}`);
    await page.waitForSelector('tr.item-error');
    const row = await text(page, 'tr.item-error');
    assert.ok(row.includes(taken), `the item error does not name the record ${taken}: ${row}`);
    assert.match(row, /already assigned/);
    await shot(page, 'run-errors');
    await press(page, 'tr.item-error a');
    await page.waitForSelector('#mappings tr[data-connection]');
    assert.match(await text(page, '#mappings'), new RegExp(facts.conflict_xero_id));
    // Put the merged name back, and wait until Xero has it again.
    const fix = await apiCall('PATCH', `/v1/contacts/${facts.conflict_local_id}`, { name: facts.merged.name });
    assert.equal(fix.status, 200);
    let back = null;
    await until(90000, 300, () => `Xero never got the name back: ${JSON.stringify(back).slice(0, 300)}`, async () => {
      back = (await simCall('GET', `/_sim/tenants/${TENANT}/Contacts/${facts.conflict_xero_id}`)).json;
      return back?.Contacts?.[0]?.Name === facts.merged.name;
    });
  });

  await step('pause and resume', async () => {
    await go(page, '#/connections');
    await page.waitForSelector('article.connection [data-action=pause]');
    await press(page, 'article.connection [data-action=pause]');
    await flash(page, 'Paused');
    await page.waitForSelector('article.connection[data-status=paused]');
    await waitText(page, 'article.connection .badge', 'paused');
    assert.equal(await page.$('article.connection [data-action=sync]'), null);
    await shot(page, 'paused');
    const c = await apiCall('GET', `/v1/connections/${facts.connection_id}`);
    assert.equal(c.json.status, 'paused');
    // Paused is still connected: the check says so.
    await press(page, 'article.connection [data-action=check]');
    await flash(page, 'is connected (paused)');
    await press(page, 'article.connection [data-action=resume]');
    await flash(page, 'Resumed');
    await page.waitForSelector('article.connection[data-status=active]');
  });

  await step('a page of another origin cannot act (CSRF) nor frame the dashboard', async () => {
    const attack = `<!doctype html><title>not the dashboard</title><iframe id="framed" src="${API}/ui/"></iframe>
<iframe name="sink"></iframe><script>
(async () => {
  const api = ${JSON.stringify(API)}, cid = ${JSON.stringify(facts.connection_id)};
  const r = { storage: sessionStorage.getItem('xero-sync.api-key') };
  try { const x = await fetch(api + '/v1/connections/' + cid + '/pause', { method: 'POST', mode: 'no-cors', credentials: 'include' }); r.nocors = x.type; } catch (e) { r.nocors = 'error'; }
  try { const x = await fetch(api + '/v1/connections', { credentials: 'include' }); r.read = x.status; } catch (e) { r.read = 'blocked'; }
  try { const x = await fetch(api + '/v1/connections/' + cid + '/pause', { method: 'POST', headers: { Authorization: 'Bearer guess' } }); r.preflighted = x.status; } catch (e) { r.preflighted = 'blocked'; }
  const f = document.createElement('form'); f.method = 'POST'; f.target = 'sink';
  f.action = api + '/v1/connections/' + cid + '/pause'; document.body.append(f); f.submit();
  window.results = r;
})();
</script>`;
    const server = http.createServer((req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      res.end(attack);
    });
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    const evil = `http://127.0.0.1:${server.address().port}`;
    assert.notEqual(new URL(evil).origin, new URL(API).origin);
    const tab = await browser.newPage();
    const messages = [];
    tab.on('console', (m) => messages.push(m.text()));
    const seen = [];
    tab.on('response', (res) => { if (res.url().startsWith(API)) seen.push([res.request().method(), new URL(res.url()).pathname, res.status()]); });
    await tab.goto(evil, { waitUntil: 'networkidle0' });
    await tab.waitForFunction(() => window.results, { timeout: 10000 });
    await sleep(1000); // the form's post lands in its frame
    const r = await tab.evaluate(() => window.results);
    log(`from ${evil}: ${JSON.stringify(r)}; the engine answered ${JSON.stringify(seen)}`);
    assert.equal(r.storage, null, 'another origin read the key');
    assert.equal(r.read, 'blocked', 'another origin read the API');
    assert.equal(r.preflighted, 'blocked', 'another origin sent an Authorization header');
    assert.equal(r.nocors, 'opaque');
    for (const [method, p, status] of seen) {
      if (method === 'GET' && p.startsWith('/ui')) continue; // the page itself: no data
      // The forged posts want the key; a preflight is no route (and grants nothing).
      assert.equal(status, method === 'OPTIONS' ? 405 : 401, `${method} ${p} answered ${status} to another origin`);
    }
    assert.ok(seen.filter(([m, p]) => m === 'POST' && p.endsWith('/pause')).length >= 2, `the forged posts did not reach the engine: ${JSON.stringify(seen)}`);
    // The dashboard refused to be framed.
    assert.ok(messages.some((t) => /frame-ancestors|X-Frame-Options/.test(t)), `no refusal to frame: ${messages.join(' | ')}`);
    for (const f of tab.frames()) {
      if (f !== tab.mainFrame()) assert.equal(await f.$('#main').catch(() => null), null, 'the dashboard showed inside another site');
    }
    await tab.close();
    server.close();
    const c = await apiCall('GET', `/v1/connections/${facts.connection_id}`);
    assert.equal(c.json.status, 'active', 'a forged request paused the connection');
  });

  await step('readable on a phone', async () => {
    await page.setViewport({ width: 390, height: 844, isMobile: true, hasTouch: true });
    await go(page, '#/connections');
    await page.waitForSelector('article.connection[data-status=active]');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `the page is ${overflow}px wider than a phone`);
    await shot(page, 'phone');
    await page.setViewport({ width: 1280, height: 900 });
  });

  await step('disconnect asks first; cancelling keeps it', async () => {
    await go(page, '#/connections');
    await page.waitForSelector('article.connection[data-status=active]');
    await shot(page, 'connections');
    await press(page, 'article.connection [data-action=disconnect]');
    await page.waitForSelector('dialog[open]');
    assert.match(await text(page, 'dialog[open] h2'), /Disconnect/);
    await press(page, 'dialog[open] [data-action=cancel]');
    await page.waitForFunction(() => !document.querySelector('dialog'));
    assert.equal((await apiCall('GET', `/v1/connections/${facts.connection_id}`)).json.status, 'active');
    await press(page, 'article.connection [data-action=disconnect]');
    await page.waitForSelector('dialog[open]');
    await press(page, 'dialog[open] [data-action=confirm]');
    await flash(page, 'Disconnected');
    await page.waitForSelector('article.connection[data-status=disconnected]');
    assert.equal((await apiCall('GET', `/v1/connections/${facts.connection_id}`)).json.status, 'disconnected');
  });

  await step('signing out forgets the key', async () => {
    await press(page, '#signout');
    await page.waitForSelector('#signin');
    assert.equal(await page.evaluate(() => sessionStorage.length), 0);
    await page.reload({ waitUntil: 'networkidle0' });
    await page.waitForSelector('#signin');
  });

  assert.deepEqual(problems, [], `the page reported errors:\n${problems.join('\n')}`);
} catch (e) {
  failed = true;
  console.error(`[ui] FAILED at step ${stepNo}: ${e.stack || e}`);
  try {
    const pages = await browser.pages();
    const p = pages[pages.length - 1];
    await p.screenshot({ path: path.join(SHOTS, 'failure.png'), fullPage: true });
    console.error(`[ui] the page at the failure: ${path.join(SHOTS, 'failure.png')} (${p.url()})`);
  } catch { /* the browser is gone */ }
} finally {
  // The contract log (its bodies come from the browser) before the browser closes; the facts
  // whatever closing it does.
  await writeContract();
  try {
    await Promise.race([browser.close(), sleep(10000)]);
  } catch (e) {
    console.error(`[ui] closing the browser: ${e.message}`);
  }
  fs.writeFileSync(RESULT, JSON.stringify(facts));
}
log(failed ? 'failed' : 'every step passed');
process.exit(failed ? 1 : 0);
