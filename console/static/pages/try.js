// Try a photo: the photo with its boxes, each box's ranked candidates (score, verified,
// similarity, inliers), a slider that dims candidates under a score, explanations on a click.

import { catalogPath, photoType, postJson } from '../api.js';
import { fill, fmt, h } from '../dom.js';
import { bitmapOf, drawBoxes } from '../draw.js';
import { catalogSelect, errorBox, explain, loading, photoPicker, thumb } from '../ui.js';

export async function render(root, { params }) {
  const { select, catalogs } = await catalogSelect({ selected: params.catalog });
  const result = h('div', { dataset: { role: 'result' } });
  const topK = h('select', { 'aria-label': 'candidates per box' }, [3, 5, 10, 20].map((k) => h('option', { value: k, selected: k === 5 }, `${k} candidates`)));
  let photo = null;
  const run = () => photo && detect(select.value, photo, Number(topK.value), result);
  select.addEventListener('change', run);
  topK.addEventListener('change', run);
  root.append(
    h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Try a photo'),
      h('p', { class: 'muted' }, 'Every object the detector finds in the photo, and the catalog items it may be, best first.'))),
  );
  if (!catalogs.length) {
    root.append(h('div', { class: 'panel empty' }, 'No catalog yet. ', h('a', { href: '#/catalogs' }, 'Create one'), ' and add items first.'));
    return;
  }
  root.append(
    h('section', { class: 'panel' },
      h('div', { class: 'row', style: 'margin-bottom:.8rem' }, h('label', { class: 'field' }, 'Catalog', select), h('label', { class: 'field' }, 'Per box', topK)),
      photoPicker((blob) => { photo = blob; run(); })),
    result);
}

async function detect(cid, photo, topK, result) {
  fill(result, loading('Detecting and matching…'));
  let answer;
  let bitmap;
  try {
    [answer, bitmap] = await Promise.all([
      postJson(`${catalogPath(cid)}/detect`, { body: photo, type: photoType(photo), query: { top_k: topK } }),
      bitmapOf(photo),
    ]);
  } catch (err) {
    fill(result, errorBox(err));
    return;
  }
  // best first: the card numbers are the labels on the photo
  const dets = answer.detections.map((d) => d).sort((a, b) => (b.matches[0]?.score ?? -1) - (a.matches[0]?.score ?? -1));
  const canvas = h('canvas', { class: 'photo', width: bitmap.width, height: bitmap.height, dataset: { role: 'photo' } });
  const ctx = canvas.getContext('2d');
  ctx.drawImage(bitmap, 0, 0);
  const n = drawBoxes(ctx, dets, { label: (d, i) => `${i + 1} ${d.matches[0] ? `${d.matches[0].item_id} ${fmt.score(d.matches[0].score)}` : d.class}` });
  canvas.dataset.boxes = String(n);
  canvas.dataset.geometry = JSON.stringify(dets.map((d) => d.box));

  const slider = h('input', { type: 'range', min: 0, max: 1, step: 0.01, value: 0.5, dataset: { role: 'min-score' }, 'aria-label': 'dim candidates under this score' });
  const sliderValue = h('span', { class: 'mono' }, '0.50');
  const list = h('div', { class: 'detections', dataset: { role: 'detections' } });
  const dim = () => {
    sliderValue.textContent = Number(slider.value).toFixed(2);
    list.querySelectorAll('.cand').forEach((c) => c.classList.toggle('dim', Number(c.dataset.score) < Number(slider.value)));
  };
  slider.addEventListener('input', dim);
  fill(list, dets.length ? dets.map((d, i) => detectionCard(cid, photo, d, i)) : h('div', { class: 'panel empty' }, 'Nothing found in this photo.'));
  dim();
  const t = answer.timings || {};
  fill(result, h('div', { class: 'split' },
    h('div', {}, h('div', { class: 'stage' }, canvas),
      h('p', { class: 'timings' }, `${dets.length} boxes · ${Object.entries(t).map(([k, v]) => `${k} ${Math.round(v)} ms`).join(' · ')}`),
      h('p', { class: 'muted small' }, 'Green: verified (score at or above the kind’s threshold). Amber: candidates only. Dashed: the whole photo.')),
    h('div', {},
      h('div', { class: 'panel row' }, h('div', { class: 'slider' }, 'Dim candidates under score', slider, sliderValue),
        h('span', { class: 'muted small' }, 'Nothing is hidden; click a candidate to see why it matched.')),
      list)));
}

function detectionCard(cid, photo, det, i) {
  const box = det.box.map((v) => Math.round(v));
  return h('section', { class: 'panel', dataset: { role: 'detection', index: i + 1 } },
    h('div', { class: 'det-head' }, h('span', { class: 'n' }, i + 1), h('h3', { style: 'margin:0' }, det.class === 'image' ? 'whole photo' : det.class),
      h('span', { class: 'muted small' }, `confidence ${fmt.score(det.confidence)} · box ${box.join(', ')}`)),
    det.matches.length
      ? h('div', { class: 'cands' }, det.matches.map((m, r) => candidate(cid, photo, det, m, r)))
      : h('div', { class: 'muted small' }, 'No candidate (the catalog is empty?).'));
}

export function candidate(cid, photo, det, m, rank) {
  const numbers = `rank ${rank + 1} · score ${fmt.score(m.score)} · ${m.verified ? 'verified' : 'not verified'} · similarity ${m.similarity.toFixed(3)} · ${m.inliers} inliers`;
  return h('button', {
    type: 'button', class: 'cand', dataset: { item: m.item_id, score: m.score, rank: rank + 1 }, title: numbers,
    onclick: () => explain(cid, photo, m.item_id, { box: det ? det.box : undefined, numbers }),
  },
  thumb(cid, m.item_id, m.image_id, m.item_id),
  h('div', { class: 'info' },
    h('div', { class: 'item' }, m.item_id),
    h('div', { class: 'row', style: 'gap:.4rem' }, h('span', { class: 'score' }, fmt.score(m.score)),
      m.verified ? h('span', { class: 'badge ok' }, 'verified') : h('span', { class: 'badge' }, 'not verified')),
    h('div', { class: 'muted small' }, `sim ${m.similarity.toFixed(2)} · ${m.inliers} inliers`)));
}
