// settings.js: one connection's settings (PUT /v1/connections/{id}/settings): the entities it
// syncs, each entity's conflict policy, fallback, matching and types, filling empty fields
// only, its schedule, the Xero Files folder of its documents, and Xero Practice Manager's jobs
// (mirrored or not, the states that mean "needs documents", the webhook of job events). The
// API checks every value; its message shows beside the field.
import { api, ENTITIES, tenantName } from './api.js';
import { h, flash, errorText, field, fieldError } from './dom.js';

const POLICIES = ['last_write_wins', 'local_wins', 'xero_wins', 'manual', 'merge'];
const POLICY_TEXT = {
  last_write_wins: 'last write wins', local_wins: 'local wins', xero_wins: 'Xero wins',
  manual: 'manual: a person decides', merge: 'merge field by field',
};

function select(values, current, text = {}) {
  return h('select', null, values.map((v) => h('option', { value: v, selected: v === current }, text[v] || v)));
}

// Entities with a policy of their own; documents (pushed as files) and XPM's jobs (pulled,
// never written back) have their own fieldsets below.
const RECORDS = ENTITIES.filter((e) => e !== 'document' && e !== 'job');

// list reads "a, b, c" into ["a", "b", "c"].
function list(text) {
  return text.split(',').map((s) => s.trim()).filter(Boolean);
}

export async function settingsView(main, ctx, id) {
  const [conn, got] = await Promise.all([
    api('GET', `/v1/connections/${id}`),
    api('GET', `/v1/connections/${id}/settings`),
  ]);
  const eff = got.effective || {};
  const ents = eff.entities || {};
  const name = tenantName(conn);
  const controls = {};

  const rows = RECORDS.filter((e) => ents[e]).map((e) => {
    const s = ents[e];
    const c = controls[e] = {
      enabled: h('input', { type: 'checkbox', checked: !!s.enabled, dataset: { field: 'entities' }, id: `en-${e}` }),
      policy: select(POLICIES, s.policy, POLICY_TEXT),
      fallback: select(POLICIES.filter((p) => p !== 'merge'), s.fallback, POLICY_TEXT),
      matching: s.matching !== undefined ? h('input', { type: 'text', value: (s.matching || []).join(', '), spellcheck: 'false' }) : null,
      types: 'types' in s ? h('input', { type: 'text', value: (s.types || []).join(', '), spellcheck: 'false', placeholder: 'every type' }) : null,
    };
    return h('fieldset', { class: 'entity-settings', dataset: { entity: e } },
      h('legend', null, e),
      h('label', { class: 'check', for: `en-${e}` }, c.enabled, ' synced'),
      field('Conflict policy', c.policy, `conflict_policy.${e}`),
      field('When a merge cannot decide', c.fallback, `merge_fallback.${e}`),
      c.matching ? field('Match on (in order)', c.matching, `matching.${e}`, 'Keys tried in turn to link a new record to one on the other side, comma-separated; empty: never match.') : null,
      c.types ? field('Xero types pulled', c.types, `types.${e}`, 'Comma-separated Xero Type names; empty: every type.') : null);
  });

  const sched = eff.schedule || {};
  const full = sched.full || {}, inc = sched.incremental || {};
  const fillEmpty = h('input', { type: 'checkbox', id: 'fill-empty', checked: Object.values(ents).some((s) => s.fill_empty_only), dataset: { field: 'fill_empty_only' } });
  const fullOn = h('input', { type: 'checkbox', id: 'full-on', checked: full.enabled !== false, dataset: { field: 'schedule.full.enabled' } });
  const fullAt = h('input', { type: 'text', value: full.at || '', inputmode: 'numeric', size: 5, spellcheck: 'false' });
  const incOn = h('input', { type: 'checkbox', id: 'inc-on', checked: inc.enabled !== false, dataset: { field: 'schedule.incremental.enabled' } });
  const incEvery = h('input', { type: 'number', value: inc.every_minutes ?? '', min: 1, step: 1 });
  const files = eff.files || {}, xpm = eff.xpm || {};
  const docsOn = h('input', { type: 'checkbox', id: 'docs-on', checked: !!(ents.document || {}).enabled, dataset: { field: 'entities' } });
  const folder = h('input', { type: 'text', id: 'files-folder', value: files.folder || '', spellcheck: 'false' });
  const xpmOn = h('input', { type: 'checkbox', id: 'xpm-on', checked: !!xpm.enabled, dataset: { field: 'xpm.enabled' } });
  const needs = h('input', { type: 'text', id: 'xpm-needs', value: (xpm.needs_documents || []).join(', '), spellcheck: 'false' });
  const hook = h('input', { type: 'url', id: 'xpm-webhook', value: xpm.webhook_url || '', spellcheck: 'false', placeholder: 'none' });

  const form = h('form', { id: 'settings-form', novalidate: true },
    h('div', { class: 'entity-grid' }, rows),
    h('fieldset', null, h('legend', null, 'Every entity'),
      h('label', { class: 'check', for: 'fill-empty' }, fillEmpty,
        ' Fill empty fields only: a pull never overwrites a local value, it fills only what is empty')),
    h('fieldset', null, h('legend', null, 'Documents (Xero Files)'),
      h('label', { class: 'check', for: 'docs-on' }, docsOn, ' Put documents into Xero Files'),
      field('Folder in Xero Files', folder, 'files.folder', 'Created in Xero if missing.')),
    h('fieldset', null, h('legend', null, 'Xero Practice Manager jobs'),
      h('label', { class: 'check', for: 'xpm-on' }, xpmOn,
        ' Mirror XPM jobs (the connection must be authorised with XPM)'),
      field('States that need documents', needs, 'xpm.needs_documents',
        'XPM job state names, comma-separated: a job entering one raises job.needs_documents, leaving it job.documents_done.'),
      field('Webhook for job events', hook, 'xpm.webhook_url', 'http:// or https:// URL; empty: none (events stay readable through the API).')),
    h('fieldset', null, h('legend', null, 'Schedule'),
      h('label', { class: 'check', for: 'full-on' }, fullOn, ' Daily full run'),
      field('at (UTC, HH:MM)', fullAt, 'schedule.full.at'),
      h('label', { class: 'check', for: 'inc-on' }, incOn, ' Incremental runs'),
      field('every (minutes)', incEvery, 'schedule.incremental.every_minutes')),
    h('div', { class: 'actions' }, h('button', { type: 'submit', dataset: { action: 'save-settings' } }, 'Save settings'),
      h('a', { class: 'button secondary', href: '#/connections' }, 'Back')),
    h('p', { class: 'field-error', id: 'settings-error', role: 'alert' }));

  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = {
      entities: ENTITIES.filter((e) => (controls[e] && controls[e].enabled.checked) ||
        (e === 'document' && docsOn.checked) || (e === 'job' && xpmOn.checked)),
      conflict_policy: {}, merge_fallback: {}, matching: {}, types: {},
      fill_empty_only: fillEmpty.checked,
      schedule: {
        full: { enabled: fullOn.checked, at: fullAt.value.trim() },
        incremental: { enabled: incOn.checked, every_minutes: incEvery.value === '' ? null : Number(incEvery.value) },
      },
    };
    for (const [e, c] of Object.entries(controls)) {
      body.conflict_policy[e] = c.policy.value;
      body.merge_fallback[e] = c.fallback.value;
      if (c.matching) body.matching[e] = list(c.matching.value);
      if (c.types && list(c.types.value).length) body.types[e] = list(c.types.value);
    }
    if (!Object.keys(body.types).length) delete body.types;
    if (folder.value.trim() !== '') body.files = { folder: folder.value.trim() };
    body.xpm = { enabled: xpmOn.checked, needs_documents: list(needs.value), webhook_url: hook.value.trim() || null };
    const general = document.getElementById('settings-error');
    general.textContent = '';
    try {
      await api('PUT', `/v1/connections/${id}/settings`, body);
      fieldError(form, null);
      flash(`Saved the settings of ${name}.`);
    } catch (e) {
      if (!fieldError(form, e)) general.textContent = errorText(e);
      flash(`Not saved: ${errorText(e)}`, 'error');
    }
  });

  main.replaceChildren(h('p', null, h('a', { href: '#/connections' }, '← Connections')),
    h('h1', null, `Settings of ${name}`), form);
}
