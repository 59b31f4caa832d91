// Lost-pet search: one photo against an animals catalog; up to 100 candidates in rank order
// with their photos, score and metadata (contact fields), paged, none cut by a threshold.

import { catalogPath, getJson, photoType, postJson } from '../api.js';
import { asText, fill, fmt, h } from '../dom.js';
import { catalogSelect, errorBox, explain, loading, photoPicker, thumb } from '../ui.js';

const PAGE = 20;

export async function render(root, { params }) {
  const { select, catalogs } = await catalogSelect({ kind: 'animals', selected: params.catalog });
  root.append(h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Lost-pet search'),
    h('p', { class: 'muted' }, 'A photo of the lost animal against a catalog of found (or known) animals: every candidate, best first, with its contact details.'))));
  if (!catalogs.length) {
    root.append(h('div', { class: 'panel empty' }, 'No animals catalog yet. ', h('a', { href: '#/catalogs' }, 'Create one'), ' of kind “animals” and add photos.'));
    return;
  }
  const result = h('div', { dataset: { role: 'result' } });
  let photo = null;
  const run = () => photo && search(select.value, photo, result);
  select.addEventListener('change', run);
  root.append(
    h('section', { class: 'panel' },
      h('div', { class: 'row', style: 'margin-bottom:.8rem' }, h('label', { class: 'field' }, 'Animals catalog', select)),
      photoPicker((blob) => { photo = blob; run(); }, { label: 'Drop a photo of the animal' })),
    result);
}

async function search(cid, photo, result) {
  fill(result, loading('Searching the catalog…'));
  let answer;
  let items;
  let info = null;
  try {
    info = await getJson('/v1/info').catch(() => null);
    const topK = Math.min(100, info?.limits?.max_top_k || 100);
    [answer, { items }] = await Promise.all([
      postJson(`${catalogPath(cid)}/search`, { body: photo, type: photoType(photo), query: { top_k: topK } }),
      getJson(`${catalogPath(cid)}/items`),
    ]);
  } catch (err) {
    fill(result, errorBox(err));
    return;
  }
  const meta = new Map(items.map((i) => [i.item_id, i.metadata || {}]));
  const threshold = info?.kinds?.animals?.threshold;
  const gallery = h('div', { class: 'gallery', dataset: { role: 'gallery' } });
  const pager = h('div', { class: 'pager', dataset: { role: 'pager' } });
  const matches = answer.matches;
  const pages = Math.max(1, Math.ceil(matches.length / PAGE));
  const show = (p) => {
    fill(gallery, matches.slice(p * PAGE, (p + 1) * PAGE).map((m, i) => card(cid, photo, m, p * PAGE + i, meta.get(m.item_id) || {})));
    fill(pager,
      h('button', { type: 'button', disabled: p === 0, dataset: { role: 'prev' }, onclick: () => show(p - 1) }, '← Previous'),
      h('span', { class: 'muted small', dataset: { role: 'page' } }, `page ${p + 1} of ${pages} · ${matches.length ? `${p * PAGE + 1}–${Math.min(matches.length, (p + 1) * PAGE)} of ${matches.length}` : 'no candidate'}`),
      h('button', { type: 'button', disabled: p + 1 >= pages, dataset: { role: 'next' }, onclick: () => show(p + 1) }, 'Next →'));
  };
  show(0);
  const query = h('img', { class: 'query-photo', alt: 'the searched photo', src: URL.createObjectURL(photo) });
  const verified = matches.filter((m) => m.verified).length;
  fill(result, h('div', { style: 'display:grid;grid-template-columns:minmax(200px,280px) 1fr;gap:1.2rem;align-items:start' },
    h('div', {}, h('div', { class: 'panel' }, h('h3', {}, 'The photo'), query,
      h('p', { class: 'small muted', style: 'margin-top:.6rem' },
        `${matches.length} candidates, ${verified} verified${threshold ? ` (score ≥ ${threshold.toFixed(2)})` : ''}. Ranked by score; nothing is cut by the threshold: look through them all.`))),
    h('div', {}, gallery, pager)));
}

function card(cid, photo, m, rank, metadata) {
  const numbers = `rank ${rank + 1} · score ${fmt.score(m.score)} · ${m.verified ? 'verified' : 'not verified'} · similarity ${m.similarity.toFixed(3)} · ${m.inliers} inliers`;
  const t = thumb(cid, m.item_id, m.image_id, m.item_id);
  t.append(h('span', { class: 'rank' }, `#${rank + 1}`));
  const fields = Object.entries(metadata);
  return h('button', { type: 'button', class: 'cand', title: numbers, dataset: { item: m.item_id, rank: rank + 1, score: m.score },
    onclick: () => explain(cid, photo, m.item_id, { numbers }) },
  t,
  h('div', { class: 'info' },
    h('div', { class: 'row', style: 'gap:.4rem;justify-content:space-between' }, h('span', { class: 'item' }, m.item_id),
      h('span', { class: 'score' }, fmt.pct(m.score))),
    h('div', { class: 'row', style: 'gap:.4rem' }, m.verified ? h('span', { class: 'badge ok' }, 'verified') : h('span', { class: 'badge' }, 'candidate'),
      h('span', { class: 'muted small' }, `sim ${m.similarity.toFixed(2)} · ${m.inliers} inliers`)),
    fields.length ? h('dl', { class: 'meta' }, fields.map(([k, v]) => [h('dt', {}, k), h('dd', {}, asText(v))])) : null));
}
