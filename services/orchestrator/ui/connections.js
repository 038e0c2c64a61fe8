// connections.js: each organisation's Xero tenants, their state, and what can be done to them.
import { api, q, ApiError, ENTITIES, tenantName } from './api.js';
import { h, badge, when, flash, errorText, field, fieldError, table } from './dom.js';

const OAUTH_ERRORS = {
  declined: 'The person declined at Xero: nothing was connected.',
  refused: 'Xero refused the authorisation code: start again.',
  expired: 'The connect link expired or was used already: start again.',
  unavailable: 'Xero or the engine could not be reached: try again in a moment.',
  failed: 'Connecting failed: see the orchestrator\'s log.',
};

// connect sends the browser to Xero's consent for organisation org; Xero sends it back to
// the engine's callback, which brings it back here.
async function connect(org) {
  try {
    const a = await api('POST', '/v1/connections/authorize', { organisation_id: org });
    window.location.assign(a.authorize_url);
  } catch (e) {
    flash(`Cannot start connecting: ${errorText(e)}`, 'error');
  }
}

// dialog asks a question in a modal <dialog>; resolves with the form's data on OK, or null.
export function ask(title, body, okLabel, danger = false) {
  return new Promise((resolve) => {
    const form = h('form', { method: 'dialog' },
      h('h2', { id: 'dialog-title' }, title), body,
      h('div', { class: 'actions' },
        h('button', { type: 'submit', value: 'cancel', class: 'secondary', dataset: { action: 'cancel' } }, 'Cancel'),
        h('button', { type: 'submit', value: 'ok', class: danger ? 'danger' : '', dataset: { action: 'confirm' } }, okLabel)));
    const dlg = h('dialog', { 'aria-labelledby': 'dialog-title' }, form);
    document.body.append(dlg);
    dlg.addEventListener('close', () => {
      const data = dlg.returnValue === 'ok' ? new FormData(form) : null;
      dlg.remove();
      resolve(data);
    });
    dlg.showModal();
  });
}

function syncForm(c, refresh) {
  const mode = h('select', { name: 'mode' },
    h('option', { value: 'incremental' }, 'incremental: what changed'),
    h('option', { value: 'full' }, 'full: every record'),
    h('option', { value: 'push' }, 'push: local changes to Xero'));
  const boxes = ENTITIES.map((e) => h('label', { class: 'check' },
    h('input', { type: 'checkbox', name: 'entity', value: e }), ` ${e}`));
  const form = h('form', { class: 'sync-form' },
    field('Mode', mode, 'mode'),
    h('fieldset', { dataset: { field: 'entities' }, id: `ent-${c.id}` },
      h('legend', null, 'Entities (none ticked: the connection\'s own)'), boxes),
    h('button', { type: 'submit', dataset: { action: 'start-sync' } }, 'Start'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const entities = boxes.map((b) => b.firstChild).filter((b) => b.checked).map((b) => b.value);
    const body = { mode: mode.value };
    if (entities.length) body.entities = entities;
    try {
      const run = await api('POST', `/v1/connections/${c.id}/sync`, body);
      flash(`Started a ${run.mode} run of ${tenantName(c)}.`);
      window.location.hash = `#/runs/${run.id}`;
    } catch (e) {
      if (!fieldError(form, e)) flash(`Not started: ${errorText(e)}`, 'error');
      refresh();
    }
  });
  return h('details', { class: 'sync' }, h('summary', { dataset: { action: 'sync' } }, 'Sync now'), form);
}

async function act(label, fn, refresh) {
  try {
    await fn();
  } catch (e) {
    flash(`${label}: ${errorText(e)}`, 'error');
  }
  refresh();
}

function card(c, stats, refresh) {
  const name = tenantName(c);
  const actions = [];
  const live = c.status === 'active' || c.status === 'paused';
  if (c.status === 'active') actions.push(syncForm(c, refresh));
  if (c.status === 'active') {
    actions.push(h('button', { type: 'button', class: 'secondary', dataset: { action: 'pause' },
      onclick: () => act('Not paused', async () => {
        await api('POST', `/v1/connections/${c.id}/pause`);
        flash(`Paused ${name}: no calls to Xero until it is resumed.`);
      }, refresh) }, 'Pause'));
  }
  if (c.status === 'paused') {
    actions.push(h('button', { type: 'button', dataset: { action: 'resume' },
      onclick: () => act('Not resumed', async () => {
        await api('POST', `/v1/connections/${c.id}/resume`);
        flash(`Resumed ${name}.`);
      }, refresh) }, 'Resume'));
  }
  if (live) {
    actions.push(h('button', { type: 'button', class: 'secondary', dataset: { action: 'check' },
      onclick: () => act('Check failed', async () => {
        const r = await api('POST', `/v1/connections/${c.id}/check`);
        flash(r.tenant_connected ? `${name} is connected (${r.status}).`
          : `${name} is not usable: ${r.reason || r.status}.`, r.tenant_connected ? 'ok' : 'error');
      }, refresh) }, 'Check'));
  }
  actions.push(h('button', { type: 'button', class: live ? 'secondary' : '', dataset: { action: 'reauthorise' },
    onclick: () => connect(c.organisation_id) }, c.status === 'disconnected' ? 'Connect again' : 'Re-authorise'));
  actions.push(h('a', { class: 'button secondary', href: `#/connections/${c.id}/settings`, dataset: { action: 'settings' } }, 'Settings'));
  actions.push(h('a', { class: 'button secondary', href: `#/runs?connection_id=${c.id}` }, 'Runs'));
  if (c.status !== 'disconnected') {
    actions.push(h('button', { type: 'button', class: 'danger', dataset: { action: 'disconnect' },
      onclick: async () => {
        const data = await ask(`Disconnect ${name}?`,
          h('div', null,
            h('p', null, 'Syncing stops, the tenant is removed from the consent at Xero, and the grant is revoked when no other tenant uses it. Mappings and history stay unless you delete them too.'),
            h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'purge', value: 'true' }),
              ' Also delete this connection\'s mappings and history')),
          'Disconnect', true);
        if (!data) return;
        act('Not disconnected', async () => {
          const r = await api('DELETE', `/v1/connections/${c.id}${data.get('purge') ? '?purge=true' : ''}`);
          flash(`Disconnected ${name}.${r.warning ? ` ${r.warning}` : ''}`);
        }, refresh);
      } }, 'Disconnect'));
  }

  const facts = [];
  if (stats) {
    const linked = Object.values(stats.entities || {}).reduce((n, e) => n + (e.linked || 0), 0);
    const b = stats.budget || {};
    const calls = stats.api_calls_today || {};
    facts.push(['Records linked', String(linked)]);
    facts.push(['API calls today', `${calls.total ?? 0}${calls.errors ? `, ${calls.errors} failed` : ''}${calls.rate_limited ? `, ${calls.rate_limited} rate-limited` : ''}`]);
    facts.push(['Budget left', b.day_limit !== undefined
      ? `${b.day_left} of ${b.day_limit} today · ${b.minute_left} of ${b.minute_limit} this minute${b.blocked_ms ? ` · blocked ${Math.ceil(b.blocked_ms / 1000)} s` : ''}`
      : '—']);
    facts.push(['Webhooks', badge((stats.webhooks || {}).state || 'not_configured')]);
    const w = stats.waiting || {};
    facts.push(['Waiting', `${w.runs_queued || 0} queued, ${w.runs_running || 0} running, ${w.local_changes || 0} local changes`]);
  }
  if (c.last_error) facts.push(['Last error', h('span', { class: 'error-text' }, c.last_error)]);
  if (c.rate_limited_until) facts.push(['Rate-limited until', when(c.rate_limited_until)]);

  const ents = stats ? Object.entries(stats.entities || {}) : [];
  return h('article', { class: 'card connection', dataset: { connection: c.id, status: c.status }, 'aria-labelledby': `t-${c.id}` },
    h('header', { class: 'card-head' },
      h('h3', { id: `t-${c.id}` }, name), badge(c.status)),
    h('dl', { class: 'facts' }, facts.map(([k, v]) => [h('dt', null, k), h('dd', null, v)])),
    ents.length ? table(`Entities of ${name}`, ['Entity', 'Linked', 'Last success', 'Waiting to send', 'Conflicts'],
      ents.map(([e, s]) => h('tr', { dataset: { entity: e } },
        h('th', { scope: 'row' }, e), h('td', { class: 'num' }, String(s.linked ?? 0)),
        h('td', null, when(s.last_success)), h('td', { class: 'num' }, String(s.outbox_pending ?? 0)),
        h('td', { class: 'num' }, s.conflicts_pending
          ? h('a', { href: `#/conflicts?connection_id=${c.id}` }, String(s.conflicts_pending)) : '0'))), 'compact') : null,
    h('div', { class: 'actions' }, actions));
}

export async function connectionsView(main, ctx) {
  const p = ctx.params;
  if (p.get('connected') !== null) {
    flash(`Connected ${p.get('connected')} Xero organisation${p.get('connected') === '1' ? '' : 's'}.`);
    history.replaceState(null, '', '#/connections');
  } else if (p.get('oauth_error')) {
    flash(OAUTH_ERRORS[p.get('oauth_error')] || OAUTH_ERRORS.failed, 'error');
    history.replaceState(null, '', '#/connections');
  }
  const list = h('div', { id: 'organisations', 'aria-busy': 'true' });
  const name = h('input', { name: 'name', required: true, maxlength: 200, autocomplete: 'organization' });
  const create = h('form', { class: 'inline-form', id: 'new-organisation' },
    field('New organisation', name, 'name', 'A customer of your application that connects Xero.'),
    h('button', { type: 'submit' }, 'Add'));
  create.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const o = await api('POST', '/v1/organisations', { name: name.value });
      fieldError(create, null);
      name.value = '';
      flash(`Added ${o.name}. Connect it to Xero below.`);
      refresh();
    } catch (e) {
      if (!fieldError(create, e)) flash(errorText(e), 'error');
    }
  });
  main.replaceChildren(h('h1', null, 'Connections'), create, list);

  let shown = null;
  async function refresh() {
    if (!ctx.alive()) return;
    try {
      const [orgs, conns] = await Promise.all([
        api('GET', `/v1/organisations${q({ limit: 1000 })}`),
        api('GET', `/v1/connections${q({ limit: 1000 })}`),
      ]);
      const stats = new Map();
      await Promise.all(conns.connections.filter((c) => c.status !== 'disconnected').map(async (c) => {
        try {
          stats.set(c.id, await api('GET', `/v1/connections/${c.id}/stats`));
        } catch (e) {
          if (!(e instanceof ApiError) || e.status !== 404) throw e;
        }
      }));
      if (!ctx.alive() || ctx.busy(main)) return;
      // Redrawn only when something shown changed.
      const now = JSON.stringify([orgs, conns, [...stats.entries()]]);
      if (now === shown) return;
      shown = now;
      const byOrg = new Map(orgs.organisations.map((o) => [o.id, []]));
      for (const c of conns.connections) {
        if (!byOrg.has(c.organisation_id)) byOrg.set(c.organisation_id, []);
        byOrg.get(c.organisation_id).push(c);
      }
      const names = new Map(orgs.organisations.map((o) => [o.id, o.name]));
      const sections = [...byOrg.entries()].map(([org, cs]) => h('section', { class: 'organisation', dataset: { organisation: org }, 'aria-labelledby': `o-${org}` },
        h('header', { class: 'section-head' },
          h('h2', { id: `o-${org}` }, names.get(org) || org),
          h('button', { type: 'button', dataset: { action: 'connect' }, onclick: () => connect(org) }, 'Connect Xero')),
        cs.length ? h('div', { class: 'cards' }, cs.map((c) => card(c, stats.get(c.id), refresh)))
          : h('p', { class: 'muted' }, 'No Xero organisation connected yet.')));
      list.replaceChildren(...(sections.length ? sections
        : [h('p', { class: 'muted' }, 'No organisation yet: add one above, then connect it to Xero.')]));
      list.setAttribute('aria-busy', 'false');
    } catch (e) {
      list.setAttribute('aria-busy', 'false');
      if (e.status !== 401) flash(`Cannot load the connections: ${errorText(e)}`, 'error');
    }
  }
  await refresh();
  ctx.every(10000, refresh);
}
