// mappings.js: how one record is linked: which Xero record a local record is on each
// connection, or which local record a Xero record is (GET /v1/mappings).
import { api, q, ENTITIES, tenantNames } from './api.js';
import { h, badge, when, flash, errorText, field, fieldError, table } from './dom.js';

export async function mappingsView(main, ctx) {
  const p = ctx.params;
  const entity = h('select', { name: 'entity' }, ENTITIES.map((e) => h('option', { value: e, selected: p.get('entity') === e }, e)));
  const side = h('select', { name: 'side' },
    h('option', { value: 'local_id', selected: !p.get('xero_id') }, 'local id'),
    h('option', { value: 'xero_id', selected: !!p.get('xero_id') }, 'Xero id'));
  const id = h('input', { name: 'id', value: p.get('local_id') || p.get('xero_id') || '', size: 38, spellcheck: 'false' });
  const form = h('form', { class: 'filters', id: 'mappings-form' },
    field('Entity', entity, 'entity'), field('By', side), field('Record id (UUID)', id, 'local_id'));
  form.append(h('button', { type: 'submit' }, 'Show links'));
  const out = h('div', { id: 'mappings' });
  main.replaceChildren(h('h1', null, 'Mappings'), form, out);

  const names = await tenantNames();

  async function look() {
    id.dataset.field = side.value;
    try {
      const r = await api('GET', `/v1/mappings${q({ entity: entity.value, [side.value]: id.value.trim() })}`);
      fieldError(form, null);
      out.replaceChildren(r.mappings.length ? table(`Links of the ${entity.value}`,
        ['Connection', 'Local id', 'Xero id', 'Status', 'Last synced', 'Xero\'s version', 'Local version', 'Writes'],
        r.mappings.map((m) => h('tr', { dataset: { connection: m.connection_id } },
          h('td', null, names.get(m.connection_id) || m.connection_id), h('td', null, h('code', null, m.local_id)),
          h('td', null, h('code', null, m.xero_id)),
          h('td', null, m.conflict_id ? h('a', { href: `#/conflicts?connection_id=${m.connection_id}` }, badge(m.status)) : badge(m.status)),
          h('td', null, when(m.last_synced_at)), h('td', null, when(m.xero_updated_at)),
          h('td', null, when(m.local_updated_at)), h('td', { class: 'num' }, String(m.sync_version))))) :
        h('p', { class: 'muted' }, 'This record is linked on no connection.'));
    } catch (e) {
      out.replaceChildren();
      if (!fieldError(form, e)) flash(errorText(e), 'error');
    }
  }
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    history.replaceState(null, '', `#/mappings${q({ entity: entity.value, [side.value]: id.value.trim() })}`);
    look();
  });
  if (id.value) await look();
}
