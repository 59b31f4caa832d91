// Catalogs: the list (counts, kind, version, re-index state), create, delete.

import { call, catalogPath, getJson, postJson } from '../api.js';
import { ago, fill, h } from '../dom.js';
import { confirmDialog, errorBox, errorText, loading, toast } from '../ui.js';

export async function render(root) {
  const name = h('input', { type: 'text', placeholder: 'e.g. Corner shop, Lost dogs of Espoo', required: true, maxlength: 200, dataset: { role: 'new-name' }, style: 'min-width:280px' });
  const kind = h('select', { dataset: { role: 'new-kind' } },
    h('option', { value: 'products' }, 'products — packaged goods, things on shelves'),
    h('option', { value: 'animals' }, 'animals — pets and known individuals'));
  const formError = h('div');
  const form = h('form', { class: 'row', dataset: { role: 'create' } },
    h('label', { class: 'field' }, 'Name', name),
    h('label', { class: 'field' }, 'Kind', kind),
    h('button', { type: 'submit', class: 'primary', style: 'align-self:flex-end' }, 'Create catalog'));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    fill(formError);
    try {
      const c = await postJson('/v1/catalogs', { json: { name: name.value.trim(), kind: kind.value } });
      toast(`Created “${c.name}”`);
      location.hash = `#/catalogs/${encodeURIComponent(c.id)}`;
    } catch (err) {
      formError.append(errorBox(err));
    }
  });

  const list = h('div', {}, loading('Loading catalogs…'));
  root.append(
    h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Catalogs'),
      h('p', { class: 'muted' }, 'Each catalog holds items with reference photos. Photos are matched against one catalog at a time.'))),
    h('section', { class: 'panel' }, h('h2', {}, 'New catalog'), form, formError),
    h('section', { class: 'panel' }, list),
  );
  await load(list);
}

async function load(list) {
  let catalogs;
  try {
    ({ catalogs } = await getJson('/v1/catalogs'));
  } catch (err) {
    fill(list, errorBox(err));
    return;
  }
  if (!catalogs.length) {
    fill(list, h('div', { class: 'empty' }, 'No catalog yet: create one above, then add items with their photos.'));
    return;
  }
  catalogs.sort((a, b) => (b.updated_at || '').localeCompare(a.updated_at || ''));
  const rows = catalogs.map((c) => h('tr', { dataset: { catalog: c.id } },
    h('td', {}, h('a', { href: `#/catalogs/${encodeURIComponent(c.id)}`, class: 'title' }, c.name), h('div', { class: 'muted small mono' }, c.id)),
    h('td', {}, h('span', { class: 'badge kind' }, c.kind)),
    h('td', { class: 'num' }, c.items),
    h('td', { class: 'num' }, c.images),
    h('td', { class: 'num' }, c.version),
    h('td', {}, c.needs_reindex
      ? h('span', { class: 'badge bad', title: `indexed with ${c.embedder}: run python -m catalog reindex ${c.id}` }, 'needs re-index')
      : h('span', { class: 'badge ok' }, 'indexed')),
    h('td', { class: 'muted small' }, ago(c.updated_at)),
    h('td', { class: 'num' },
      h('a', { class: 'button', href: `#/${c.kind === 'animals' ? 'lost' : 'try'}?catalog=${encodeURIComponent(c.id)}` }, c.kind === 'animals' ? 'Search' : 'Try a photo'),
      ' ',
      h('button', { type: 'button', class: 'danger', dataset: { role: 'delete' }, onclick: () => remove(c, list) }, 'Delete')),
  ));
  fill(list, h('table', {},
    h('thead', {}, h('tr', {}, h('th', {}, 'Catalog'), h('th', {}, 'Kind'), h('th', { class: 'num' }, 'Items'), h('th', { class: 'num' }, 'Images'),
      h('th', { class: 'num' }, 'Version'), h('th', {}, 'Index'), h('th', {}, 'Updated'), h('th', {}))),
    h('tbody', {}, rows)));
}

export async function remove(c, list) {
  const ok = await confirmDialog(`Delete “${c.name}”?`,
    `This deletes its ${c.items} items, ${c.images} photos and their features. It cannot be undone.`);
  if (!ok) return false;
  try {
    await call('DELETE', catalogPath(c.id));
    toast(`Deleted “${c.name}”`);
    if (list) await load(list);
    return true;
  } catch (err) {
    toast(errorText(err), true);
    return false;
  }
}
