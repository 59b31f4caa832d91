// One catalog: its items with thumbnails and metadata; add items or photos (drag and drop or
// picker, a progress bar per upload, the answer's warnings), edit metadata, delete, search.

import { call, catalogPath, getJson, itemPath, upload } from '../api.js';
import { asText, fill, h } from '../dom.js';
import { confirmDialog, errorBox, errorText, fileInput, kvEditor, loading, modal, onDrop, thumb, toast } from '../ui.js';
import { remove as removeCatalog } from './catalogs.js';

const ITEM_ID = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

/** An item id made from a file name: "Arla Milk (1).jpg" -> "Arla-Milk-1". */
export function idFromName(name) {
  const stem = name.replace(/\.[A-Za-z0-9]{1,5}$/, '');
  const id = stem.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[.-]+|-+$/g, '').slice(0, 128);
  return id || `item-${Date.now().toString(36)}`;
}

/** What each upload warning code means for the person who took the photo. */
export const WARNING_WORDS = {
  dark: 'too dark: the details the matcher needs are lost; take it again in more light',
  over_exposed: 'over-exposed: parts are burnt white; avoid direct light or flash on shiny packaging',
  blurry: 'blurry: keep the camera still and focused; keypoint verification needs sharp edges',
  low_information: 'almost plain: little texture or print to match; fill the frame with the item',
  odd_size: 'an unusual size or shape (very small or very elongated): matching works best on ordinary photos',
  greyscale: 'black and white: colour helps tell look-alike items apart',
  no_object: 'the detector found no object in it: search will match the whole photo only; crop closer to the item',
  exact_duplicate: 'the same photo is already stored: it adds nothing',
  near_duplicate: 'almost the same as a stored photo: a different angle adds more',
};

/** A warning line with its explanation: "blurry" -> "blurry — blurry: keep the camera...". */
export function explainWarning(line) {
  const code = [...line.matchAll(/\b[a-z_]+\b/g)].map((m) => m[0]).find((w) => Object.hasOwn(WARNING_WORDS, w));
  return { line, why: code ? WARNING_WORDS[code] : '' };
}

/** The warnings of an upload answer as lines of text (whatever their shape). */
export function warningLines(answer) {
  const out = [];
  const walk = (w, prefix = '') => {
    if (w === null || w === undefined) return;
    if (typeof w === 'string') out.push(prefix + w);
    else if (Array.isArray(w)) w.forEach((x) => walk(x, prefix));
    else if (typeof w === 'object') {
      if (w.message || w.code) out.push(prefix + [w.code, w.message].filter(Boolean).join(': '));
      else if (w.warnings) walk(w.warnings, w.image_id ? `${w.image_id}: ` : prefix);
      else out.push(prefix + JSON.stringify(w));
    } else out.push(prefix + String(w));
  };
  walk(answer && answer.warnings);
  return out;
}

export async function render(root, { args, params = {} }) {
  const [cid] = args;
  const head = h('div', { class: 'page-head' }, loading('Loading the catalog…'));
  const items = h('div', {});
  const count = h('span', { class: 'muted small' });
  const search = h('input', { type: 'search', placeholder: 'Search item ids and metadata', dataset: { role: 'search' }, style: 'min-width:300px' });
  const state = { cid, catalog: null, items: [], page: 0 };

  const refresh = async () => {
    try {
      const [catalog, list] = await Promise.all([getJson(catalogPath(cid)), getJson(`${catalogPath(cid)}/items`)]);
      state.catalog = catalog;
      state.items = list.items;
      renderHead(head, state);
      renderItems(items, count, search.value, state, refresh);
    } catch (err) {
      if (!state.catalog) fill(root, crumbs(), errorBox(err)); // an unknown catalog: its 404 only
      else fill(head, errorBox(err));
    }
  };
  if (params.q) search.value = params.q; // an item opened from another page (the analytics map)
  search.addEventListener('input', () => { state.page = 0; renderItems(items, count, search.value, state, refresh); });

  const crumbs = () => h('div', { class: 'crumbs' }, h('a', { href: '#/catalogs' }, 'Catalogs'), ' / ');
  root.append(
    crumbs(),
    head,
    addPanel(state, refresh),
    h('section', {},
      h('div', { class: 'row', style: 'margin-bottom:.8rem' }, h('h2', { style: 'margin:0' }, 'Items'), search, count)),
    items,
  );
  await refresh();
}

function renderHead(head, { catalog: c }) {
  fill(head,
    h('div', {},
      h('h1', { dataset: { role: 'catalog-name' } }, c.name),
      h('div', { class: 'row small' },
        h('span', { class: 'badge kind' }, c.kind),
        h('span', { class: 'muted' }, `${c.items} items · ${c.images} photos · version ${c.version}`),
        c.needs_reindex ? h('span', { class: 'badge bad' }, 'needs re-index') : h('span', { class: 'badge ok' }, 'indexed'),
        h('span', { class: 'muted mono' }, c.id))),
    h('div', { class: 'row' },
      c.kind === 'animals'
        ? h('a', { class: 'button primary', href: `#/lost?catalog=${encodeURIComponent(c.id)}` }, 'Lost-pet search')
        : null,
      h('a', { class: c.kind === 'animals' ? 'button' : 'button primary', href: `#/try?catalog=${encodeURIComponent(c.id)}` }, 'Try a photo'),
      h('a', { class: 'button', href: `#/live?catalog=${encodeURIComponent(c.id)}` }, 'Live'),
      h('button', { type: 'button', class: 'danger', dataset: { role: 'delete-catalog' }, onclick: async () => {
        if (await removeCatalog(c)) location.hash = '#/catalogs';
      } }, 'Delete catalog')));
}

function addPanel(state, refresh) {
  const itemId = h('input', { type: 'text', placeholder: 'empty: one item per photo, named after the file', dataset: { role: 'item-id' }, style: 'width:100%' });
  const meta = kvEditor({});
  const uploads = h('div', { class: 'uploads', dataset: { role: 'uploads' } });
  const start = (files) => addFiles(state, files, itemId.value.trim(), meta.read(), uploads).then(refresh);
  const input = fileInput(start, { multiple: true });
  input.dataset.role = 'files';
  const zone = h('div', { class: 'drop' },
    h('p', {}, h('strong', {}, 'Drop reference photos here'), ' — several at once; JPEG or PNG'),
    h('button', { type: 'button', class: 'primary', onclick: () => input.click() }, 'Choose photos'), input);
  onDrop(zone, start);
  return h('section', { class: 'panel' },
    h('h2', {}, 'Add an item or photos'),
    h('div', { class: 'split' },
      h('div', {},
        h('label', { class: 'field' }, 'Item id (letters, digits, . _ -)', itemId),
        h('p', { class: 'muted small' }, 'Photos dropped with an item id go to that item (made when new). Metadata is stored with new items.'),
        h('div', { class: 'field', style: 'margin-top:.6rem' }, h('span', { class: 'muted small' }, 'Metadata of new items'), meta)),
      zone),
    uploads);
}

/** One row of the upload list: name, progress bar, status, warnings. */
function uploadRow(name) {
  const bar = h('progress', { max: 1, value: 0 });
  const status = h('span', { class: 'status muted' }, 'waiting');
  const row = h('div', { class: 'upload', dataset: { role: 'upload' } }, h('span', { class: 'name', title: name }, name), bar, status);
  return {
    row,
    progress: (f) => { bar.value = f; status.textContent = f < 1 ? `uploading ${Math.round(f * 100)} %` : 'indexing…'; },
    done: (text, warnings) => {
      bar.value = 1;
      bar.classList.add('done');
      status.textContent = text;
      status.className = 'status ok';
      row.dataset.state = 'done';
      if (warnings.length) {
        row.append(h('div', { class: 'warnings', dataset: { role: 'warnings' } }, warnings.map((w) => {
          const { line, why } = explainWarning(w);
          return h('div', {}, `⚠ ${line}`, why ? h('span', { class: 'why', dataset: { role: 'why' } }, `— ${why}`) : null);
        })));
      }
    },
    fail: (err) => {
      bar.value = 1; // a refused upload: the whole bar red, not a blue "success"
      bar.classList.add('failed');
      status.textContent = `refused: ${errorText(err)}`;
      status.className = 'status bad';
      row.dataset.state = 'failed';
    },
  };
}

/** Upload ``files`` one after another: each to ``itemId`` (created when new) or, without an
 * id, each as a new item named after its file. */
async function addFiles(state, files, itemId, metadata, list, { existing = false } = {}) {
  if (itemId && !ITEM_ID.test(itemId)) {
    toast('An item id is 1-128 letters, digits, . _ - (not starting with a dot)', true);
    return;
  }
  const rows = files.map((f) => {
    const r = uploadRow(f.name);
    list.prepend(r.row);
    return r;
  });
  let known = existing || state.items.some((i) => i.item_id === itemId);
  for (const [i, file] of files.entries()) {
    const target = itemId || idFromName(file.name);
    const form = new FormData();
    form.append('images', file, file.name);
    let path = `${catalogPath(state.cid)}/items`;
    if (itemId && known) path = `${itemPath(state.cid, target)}/images`;
    else {
      form.append('item_id', target);
      if (Object.keys(metadata).length) form.append('metadata', JSON.stringify(metadata));
    }
    try {
      const answer = await upload(path, form, rows[i].progress);
      if (itemId) known = true;
      rows[i].done(`added to ${answer.item_id}`, warningLines(answer));
    } catch (err) {
      rows[i].fail(err);
    }
  }
}

function matches(item, q) {
  if (!q) return true;
  const hay = `${item.item_id} ${Object.entries(item.metadata || {}).map(([k, v]) => `${k} ${asText(v)}`).join(' ')}`.toLowerCase();
  return q.toLowerCase().split(/\s+/).filter(Boolean).every((w) => hay.includes(w));
}

export const ITEMS_PAGE = 24;

/** One page of the (searched) items: only its cards and thumbnails are made. */
function renderItems(box, count, q, state, refresh) {
  const shown = state.items.filter((i) => matches(i, q));
  count.textContent = q ? `${shown.length} of ${state.items.length}` : `${state.items.length}`;
  if (!state.items.length) {
    fill(box, h('div', { class: 'empty panel' }, 'No items yet: drop reference photos above.'));
    return;
  }
  const pages = Math.max(1, Math.ceil(shown.length / ITEMS_PAGE));
  state.page = Math.min(state.page, pages - 1);
  const p = state.page;
  const go = (n) => { state.page = n; renderItems(box, count, q, state, refresh); box.scrollIntoView({ block: 'start' }); };
  const grid = h('div', { class: 'grid', dataset: { role: 'items' } }, shown.slice(p * ITEMS_PAGE, (p + 1) * ITEMS_PAGE).map((item) => itemCard(state, item, refresh)));
  const pager = pages > 1
    ? h('div', { class: 'pager', dataset: { role: 'items-pager' } },
      h('button', { type: 'button', disabled: p === 0, dataset: { role: 'prev' }, onclick: () => go(p - 1) }, '← Previous'),
      h('span', { class: 'muted small', dataset: { role: 'page' } }, `page ${p + 1} of ${pages} · items ${p * ITEMS_PAGE + 1}–${Math.min(shown.length, (p + 1) * ITEMS_PAGE)} of ${shown.length}`),
      h('button', { type: 'button', disabled: p + 1 >= pages, dataset: { role: 'next' }, onclick: () => go(p + 1) }, 'Next →'))
    : null;
  fill(box, grid, pager);
}

function itemCard(state, item, refresh) {
  const { cid } = state;
  const thumbs = h('div', { class: item.images.length === 1 ? 'thumbs one' : 'thumbs' },
    item.images.map((im) => {
      const t = thumb(cid, item.item_id, im.image_id, `${item.item_id} ${im.image_id}`);
      t.dataset.image = im.image_id;
      t.append(h('button', { type: 'button', class: 'x', title: 'Delete this photo', onclick: async () => {
        if (!(await confirmDialog('Delete this photo?', `Photo ${im.image_id} of ${item.item_id} and its features are deleted.`))) return;
        try { await call('DELETE', `${itemPath(cid, item.item_id)}/images/${encodeURIComponent(im.image_id)}`); toast('Photo deleted'); } catch (err) { toast(errorText(err), true); }
        refresh();
      } }, '✕'));
      return t;
    }));
  const meta = Object.entries(item.metadata || {});
  const uploads = h('div', { class: 'uploads' });
  const more = (files) => addFiles(state, files, item.item_id, {}, uploads, { existing: true }).then(refresh);
  const input = fileInput(more, { multiple: true });
  const card = h('article', { class: 'card', dataset: { item: item.item_id } },
    thumbs,
    h('div', { class: 'body' },
      h('div', { class: 'title', dataset: { role: 'item-id' } }, item.item_id),
      h('div', { class: 'muted small' }, `${item.images.length} photo${item.images.length === 1 ? '' : 's'}`),
      meta.length
        ? h('dl', { class: 'meta', dataset: { role: 'metadata' } }, meta.map(([k, v]) => [h('dt', {}, k), h('dd', {}, asText(v))]))
        : h('div', { class: 'muted small' }, 'no metadata'),
      uploads),
    h('div', { class: 'actions' },
      h('button', { type: 'button', class: 'link', dataset: { role: 'edit' }, onclick: () => editMetadata(cid, item, refresh) }, 'Edit metadata'),
      h('button', { type: 'button', class: 'link', onclick: () => input.click() }, 'Add photos'), input,
      h('span', { class: 'spacer' }),
      h('button', { type: 'button', class: 'link danger', onclick: async () => {
        if (!(await confirmDialog(`Delete ${item.item_id}?`, `The item, its ${item.images.length} photos and their features are deleted.`))) return;
        try { await call('DELETE', itemPath(cid, item.item_id)); toast(`Deleted ${item.item_id}`); } catch (err) { toast(errorText(err), true); }
        refresh();
      } }, 'Delete')));
  onDrop(card, more);
  return card;
}

async function editMetadata(cid, item, refresh) {
  const editor = kvEditor(item.metadata || {});
  const problem = h('div');
  await modal({
    title: `Metadata of ${item.item_id}`,
    body: h('div', {}, h('p', { class: 'muted small' }, 'Free fields: a name, a price, an owner’s phone…'), editor, problem),
    foot: (close) => [
      h('button', { type: 'button', onclick: close }, 'Cancel'),
      h('button', { type: 'button', class: 'primary', dataset: { role: 'save-metadata' }, onclick: async () => {
        try {
          await call('PATCH', itemPath(cid, item.item_id), { json: { metadata: editor.read(), replace: true } });
          toast('Metadata saved');
          close();
        } catch (err) {
          fill(problem, errorBox(err));
        }
      } }, 'Save'),
    ],
  });
  refresh();
}
