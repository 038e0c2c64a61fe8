// runs.js: the runs as they happen: a list, and one run with its progress per entity, steps
// and the records that failed.
import { api, q, tenantNames } from './api.js';
import { h, badge, bar, when, duration, flash, errorText, table, shortId, field } from './dom.js';

const ACTIVE = new Set(['queued', 'running']);

function bars(run) {
  const entries = Object.entries(run.progress || {});
  if (!entries.length) return h('span', { class: 'muted' }, '—');
  return h('div', { class: 'bars' }, entries.map(([e, p]) => bar(e, p)));
}

export async function runsView(main, ctx) {
  const names = await tenantNames();
  const conn = h('select', { name: 'connection_id' }, h('option', { value: '' }, 'every connection'),
    [...names.entries()].map(([id, n]) => h('option', { value: id, selected: ctx.params.get('connection_id') === id }, n)));
  const status = h('select', { name: 'status' }, h('option', { value: '' }, 'any status'),
    ['queued', 'running', 'succeeded', 'partial', 'failed', 'canceled'].map((s) => h('option', { value: s, selected: ctx.params.get('status') === s }, s)));
  const filters = h('form', { class: 'filters' }, field('Connection', conn), field('Status', status));
  const body = h('div', { 'aria-live': 'off' });
  main.replaceChildren(h('h1', null, 'Runs'), filters, body);
  filters.addEventListener('change', () => {
    window.location.hash = `#/runs${q({ connection_id: conn.value, status: status.value })}`;
  });

  async function refresh() {
    const r = await api('GET', `/v1/runs${q({ connection_id: conn.value, status: status.value, limit: 50 })}`);
    if (!ctx.alive()) return;
    body.replaceChildren(r.runs.length ? table('The latest runs, newest first',
      ['Run', 'Connection', 'Mode', 'Started by', 'Status', 'Progress', 'Calls', 'Started', 'Took'],
      r.runs.map((run) => h('tr', { dataset: { run: run.id, status: run.status } },
        h('td', null, h('a', { href: `#/runs/${run.id}` }, shortId(run.id))),
        h('td', null, names.get(run.connection_id) || shortId(run.connection_id)),
        h('td', null, run.mode), h('td', null, run.trigger), h('td', null, badge(run.status)),
        h('td', { class: 'progress-cell' }, bars(run)),
        h('td', { class: 'num' }, String(run.api_calls ?? 0)),
        h('td', null, when(run.started_at || run.created_at)), h('td', null, duration(run.duration_ms))))) : h('p', { class: 'muted' }, 'No run yet.'));
  }
  await refresh();
  ctx.every(1500, refresh);
}

function countsTable(run) {
  const cols = ['processed', 'created', 'updated', 'unchanged', 'failed', 'conflicts', 'skipped'];
  const rows = Object.entries(run.counts || {});
  if (!rows.length) return null;
  return table('Records by entity', ['Entity', ...cols],
    rows.map(([e, c]) => h('tr', null, h('th', { scope: 'row' }, e),
      cols.map((k) => h('td', { class: 'num' }, String(c[k] ?? 0))))), 'compact');
}

// recordLink leads from a record named in an error to its links on every connection.
function recordLink(err) {
  const by = err.local_id ? { local_id: err.local_id } : err.xero_id ? { xero_id: err.xero_id } : null;
  const label = err.record || (err.local_id ? `local ${err.local_id.slice(0, 8)}` : err.xero_id ? `Xero ${err.xero_id.slice(0, 8)}` : '—');
  if (!by) return label;
  return h('a', { href: `#/mappings${q({ entity: err.entity, ...by })}`, title: 'How this record is linked' }, label);
}

export async function runView(main, ctx, id) {
  const names = await tenantNames();
  const out = h('div', null);
  main.replaceChildren(h('p', null, h('a', { href: '#/runs' }, '← Runs')), out);

  async function cancel() {
    try {
      const r = await api('POST', `/v1/runs/${id}/cancel`);
      flash(r.status === 'canceled' ? 'Run canceled.' : 'Cancel asked: the step under way finishes first.');
    } catch (e) {
      flash(`Not canceled: ${errorText(e)}`, 'error');
    }
    refresh();
  }

  async function refresh() {
    const run = await api('GET', `/v1/runs/${id}`);
    if (!ctx.alive()) return false;
    const active = ACTIVE.has(run.status);
    const s = run.steps || {};
    out.replaceChildren(
      h('header', { class: 'section-head' },
        h('h1', null, `${run.mode} run `, shortId(run.id)), badge(run.status),
        active && !run.cancel_requested_at
          ? h('button', { type: 'button', class: 'danger', dataset: { action: 'cancel-run' }, onclick: cancel }, 'Cancel run') : null),
      h('dl', { class: 'facts', id: 'run-facts', dataset: { status: run.status } },
        h('dt', null, 'Connection'), h('dd', null, names.get(run.connection_id) || run.connection_id),
        h('dt', null, 'Started by'), h('dd', null, run.trigger),
        h('dt', null, 'Direction'), h('dd', null, run.direction),
        h('dt', null, 'Created'), h('dd', null, when(run.created_at)),
        h('dt', null, 'Finished'), h('dd', null, run.finished_at ? when(run.finished_at) : active ? 'running…' : '—'),
        h('dt', null, 'Took'), h('dd', null, duration(run.duration_ms)),
        h('dt', null, 'Calls to Xero'), h('dd', null, String(run.api_calls ?? 0)),
        run.error ? [h('dt', null, 'Error'), h('dd', { class: 'error-text' }, run.error)] : null,
        run.waiting ? [h('dt', null, 'Waiting'), h('dd', null, `${run.waiting.reason} (${run.waiting.problem}) until `, when(run.waiting.until))] : null,
        run.cancel_requested_at ? [h('dt', null, 'Cancel asked'), h('dd', null, when(run.cancel_requested_at))] : null),
      h('section', { 'aria-labelledby': 'h-progress' }, h('h2', { id: 'h-progress' }, 'Progress'), h('div', { id: 'run-progress' }, bars(run))),
      h('section', { 'aria-labelledby': 'h-steps' }, h('h2', { id: 'h-steps' }, 'Steps'),
        h('p', { id: 'run-steps' }, `${s.done ?? 0} of ${s.total ?? 0} done, ${s.running ?? 0} running, ${s.pending ?? 0} waiting, ${s.failed ?? 0} failed; ${s.attempts ?? 0} attempts.`),
        h('ol', { class: 'phases' }, (run.phases || []).map((ph, i) => h('li', { class: i === run.phase && active ? 'current' : '' },
          `${ph.entity} ${ph.op}${ph.full ? ' (full)' : ''}`))),
        (run.failed_steps || []).length ? table('Steps that failed', ['Step', 'Entity', 'Error'],
          run.failed_steps.map((f) => h('tr', null, h('td', null, f.kind), h('td', null, f.entity), h('td', { class: 'error-text' }, f.error || '—'))), 'compact') : null),
      h('section', { 'aria-labelledby': 'h-counts' }, h('h2', { id: 'h-counts' }, 'Records'), countsTable(run) || h('p', { class: 'muted' }, 'None yet.')),
      h('section', { 'aria-labelledby': 'h-errors' }, h('h2', { id: 'h-errors' }, 'Records that failed'),
        (run.item_errors || []).length ? table('Records that failed, with Xero\'s or the engine\'s reason', ['Entity', 'Record', 'Reason', 'When'],
          run.item_errors.map((e) => h('tr', { class: 'item-error' }, h('td', null, e.entity), h('td', null, recordLink(e)),
            h('td', { class: 'error-text' }, e.message), h('td', null, when(e.at)))), 'compact')
          : h('p', { class: 'muted' }, 'None.')));
    return active;
  }
  // Followed every second until it ends (then once more, so the end is shown whole).
  if (await refresh()) ctx.every(1000, refresh);
}
