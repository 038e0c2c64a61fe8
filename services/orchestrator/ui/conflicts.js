// conflicts.js: records changed on both sides, field by field: the version both sides last
// agreed on (base), the local one and Xero's, the changed values marked; settled by keeping one
// side, ignoring, or merging a value picked per field.
import { api, q, isRaw, tenantNames } from './api.js';
import { h, badge, show, same, when, flash, errorText, field } from './dom.js';

// fieldsOf lists the fields of the three versions, the local record's order first.
function fieldsOf(c) {
  const seen = new Set();
  for (const v of [c.local, c.xero, c.base]) {
    for (const k of Object.keys(v || {})) seen.add(k);
  }
  return [...seen];
}

function cell(value, changed, side) {
  return h('td', { class: changed ? `changed changed-${side}` : '', dataset: { side } },
    changed ? h('span', { class: 'sr-only' }, 'changed: ') : null,
    typeof value === 'object' && value !== null && !isRaw(value) ? h('pre', null, show(value)) : show(value));
}

// conflictCard shows one conflict; pending, with the choices that settle it.
function conflictCard(c, names, refresh) {
  const base = c.base || {}, local = c.local || {}, xero = c.xero || {};
  const pending = c.status === 'PENDING';
  const fields = fieldsOf(c);
  const differing = fields.filter((f) => !same(local[f], xero[f]));
  const alike = fields.filter((f) => same(local[f], xero[f]));
  const picks = new Map();
  const title = `${c.entity} ${c.record || c.local_id.slice(0, 8)}`;

  const row = (f) => {
    const lc = !same(local[f], base[f]), xc = !same(xero[f], base[f]);
    const differs = !same(local[f], xero[f]);
    let pick = null;
    if (pending && differs) {
      // The side that changed, by default; both changed: the local one.
      const def = xc && !lc ? 'xero' : 'local';
      const group = `pick-${c.id}-${f}`;
      pick = h('td', { class: 'pick' }, h('fieldset', null, h('legend', { class: 'sr-only' }, `Keep for ${f}`),
        ['local', 'xero'].map((side) => h('label', { class: 'check' },
          h('input', { type: 'radio', name: group, value: side, checked: side === def, dataset: { field: f },
            onchange: () => picks.set(f, side) }), side === 'local' ? ' local' : ' Xero'))));
      picks.set(f, def);
    } else if (pending) {
      pick = h('td', { class: 'muted' }, 'same');
    }
    return h('tr', { class: lc && xc && differs ? 'clash' : '', dataset: { field: f } },
      h('th', { scope: 'row' }, f), cell(base[f], false, 'base'), cell(local[f], lc, 'local'),
      cell(xero[f], xc, 'xero'), pick);
  };
  const head = ['Field', 'Base (last agreed)', 'Local', 'Xero'];
  if (pending) head.push('Keep');
  const mkTable = (fs, caption) => h('div', { class: 'table-wrap' }, h('table', { class: 'diff' },
    h('caption', { class: 'sr-only' }, caption),
    h('thead', null, h('tr', null, head.map((t) => h('th', { scope: 'col' }, t)))),
    h('tbody', null, fs.map(row))));

  async function resolve(resolution) {
    const body = { resolution, by: 'dashboard' };
    if (resolution === 'MERGED') {
      // The local record with Xero's value where Xero's was picked. A shallow copy: values
      // are replaced whole, never changed inside, and exact decimals (api.js) stay as they are.
      const data = { ...local };
      for (const [f, side] of picks) {
        if (side !== 'xero') continue;
        if (xero[f] === undefined) delete data[f];
        else data[f] = xero[f];
      }
      body.data = data;
    }
    try {
      const r = await api('POST', `/v1/conflicts/${c.id}/resolve`, body);
      const words = { KEEP_LOCAL: 'kept the local version', KEEP_XERO: 'kept Xero\'s version', MERGED: 'merged', IGNORED: 'ignored' };
      // What now differs from Xero goes there: by the run the answer names, or, when the
      // change joined a push already waiting, by the connection's next push.
      const sends = r.resolution === 'KEEP_LOCAL' || r.resolution === 'MERGED';
      flash(`${title}: ${words[r.resolution] || r.resolution}.`, 'ok', !sends ? '' : r.run_id
        ? [' ', h('a', { href: `#/runs/${r.run_id}`, id: 'resolution-run' }, 'The run that sends it to Xero'), '.']
        : [' The connection\'s next push sends it to Xero: ', h('a', { href: `#/runs?connection_id=${c.connection_id}`, id: 'resolution-run' }, 'its runs'), '.']);
    } catch (e) {
      flash(`Not resolved: ${errorText(e)}`, 'error');
    }
    refresh();
  }

  return h('article', { class: 'card conflict', dataset: { conflict: c.id, status: c.status, local: c.local_id }, 'aria-labelledby': `c-${c.id}` },
    h('header', { class: 'card-head' }, h('h2', { id: `c-${c.id}` }, title), badge(c.status)),
    h('p', { class: 'muted' }, `${names.get(c.connection_id) || c.connection_id} · detected `, when(c.detected_at),
      c.reason ? ` · ${c.reason}` : '', ` · policy ${c.policy}`),
    differing.length ? mkTable(differing, `Fields that differ between the local record and Xero's`)
      : h('p', null, 'Both sides now hold the same values.'),
    alike.length ? h('details', null, h('summary', null, `${alike.length} fields the same on both sides`), mkTable(alike, 'Fields the same on both sides')) : null,
    pending ? h('div', { class: 'actions' },
      h('button', { type: 'button', dataset: { action: 'keep-local' }, onclick: () => resolve('KEEP_LOCAL') }, 'Keep local'),
      h('button', { type: 'button', dataset: { action: 'keep-xero' }, onclick: () => resolve('KEEP_XERO') }, 'Keep Xero'),
      h('button', { type: 'button', dataset: { action: 'merge' }, onclick: () => resolve('MERGED') }, 'Merge the values picked'),
      h('button', { type: 'button', class: 'secondary', dataset: { action: 'ignore' }, onclick: () => resolve('IGNORED') }, 'Ignore'))
      : h('p', null, `Resolution: ${c.resolution || '—'}`, c.resolved_by ? ` by ${c.resolved_by}` : '', c.resolved_at ? [' at ', when(c.resolved_at)] : ''));
}

export async function conflictsView(main, ctx) {
  const names = await tenantNames();
  const status = h('select', { name: 'status' }, ['PENDING', 'RESOLVED', 'IGNORED'].map((s) =>
    h('option', { value: s, selected: (ctx.params.get('status') || 'PENDING') === s }, s.toLowerCase())));
  const conn = h('select', { name: 'connection_id' }, h('option', { value: '' }, 'every connection'),
    [...names.entries()].map(([id, n]) => h('option', { value: id, selected: ctx.params.get('connection_id') === id }, n)));
  const filters = h('form', { class: 'filters' }, field('Status', status), field('Connection', conn));
  filters.addEventListener('change', () => {
    window.location.hash = `#/conflicts${q({ status: status.value, connection_id: conn.value })}`;
  });
  const list = h('div', { id: 'conflicts' });
  main.replaceChildren(h('h1', null, 'Conflicts'), filters, list);

  // Redrawn only when the conflicts listed change, so that the values a person is picking
  // for a merge are never reset under them.
  let shown = null;
  async function refresh() {
    const r = await api('GET', `/v1/conflicts${q({ status: status.value, connection_id: conn.value, limit: 100 })}`);
    if (!ctx.alive() || ctx.busy(main)) return;
    const now = r.conflicts.map((c) => `${c.id}:${c.status}`).join(',');
    if (now === shown) return;
    shown = now;
    list.replaceChildren(...(r.conflicts.length ? r.conflicts.map((c) => conflictCard(c, names, refresh))
      : [h('p', { class: 'muted' }, status.value === 'PENDING' ? 'No conflict waits for a person.' : 'None.')]));
    ctx.conflictsChanged();
  }
  await refresh();
  ctx.every(10000, refresh);
}
