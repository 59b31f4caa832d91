// Analytics of a catalog: run the job (or show its last run), the 2-D map drawn here (hover for
// the photo and item, click to open the item, wheel to zoom, drag to pan), clusters with sample
// photos (re-cluster at a chosen k), outliers, duplicates, confused item pairs, quality flags,
// and the job's CSV files.

import { download, jobFilePath, postJson, catalogPath } from '../api.js';
import { fill, h } from '../dom.js';
import { fileText, follow, jobStatus, parseCsv, recentJobs, rememberJob } from '../jobs.js';
import { catalogSelect, errorBox, errorText, loading, thumb, toast } from '../ui.js';

const PALETTE = ['#2563eb', '#16a34a', '#dc2626', '#9333ea', '#ea580c', '#0891b2', '#ca8a04', '#db2777', '#4f46e5', '#65a30d',
  '#0d9488', '#b91c1c', '#7c3aed', '#c2410c', '#0369a1', '#a16207', '#be185d', '#15803d', '#1d4ed8', '#9f1239'];
export const colourOf = (c) => (c < 0 ? '#9ca3af' : PALETTE[c % PALETTE.length]);

let live = false;

export async function render(root, { params }) {
  live = true;
  root.append(h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Analytics'),
    h('p', { class: 'muted' }, 'A catalog’s photos as a map, in clusters, with its outliers, duplicates, look-alike items and photo quality. The job reads the stored embeddings; no model runs again.'))));
  let select;
  let catalogs;
  try {
    ({ select, catalogs } = await catalogSelect({ selected: params.catalog }));
  } catch (err) {
    root.append(errorBox(err));
    return undefined;
  }
  if (!catalogs.length) {
    root.append(h('div', { class: 'panel empty' }, 'No catalog yet. ', h('a', { href: '#/catalogs' }, 'Create one'), ' and add photos first.'));
    return undefined;
  }
  const k = h('input', { type: 'number', min: 0, max: 1000, step: 1, value: params.k || 0, style: 'width:7em', dataset: { role: 'k' } });
  const method = h('select', { dataset: { role: 'method' } }, h('option', { value: 'kmeans' }, 'k-means'), h('option', { value: 'hdbscan' }, 'HDBSCAN (finds its own clusters and noise)'));
  const grain = h('select', { dataset: { role: 'choose-by' } },
    h('option', { value: 'readable' }, 'fine: the most distinct clusters'),
    h('option', { value: 'coarse' }, 'coarse: fewer, broader clusters'));
  grain.value = params.choose_by === 'coarse' ? 'coarse' : 'readable';
  const status = h('div');
  const result = h('div', { dataset: { role: 'analytics-result' } });
  const start = async (kValue) => {
    const cid = select.value;
    try {
      const job = await postJson(`${catalogPath(cid)}/analytics`, { json: { k: Number(kValue) || 0, choose_by: grain.value, method: method.value } });
      rememberJob({ id: job.id, kind: 'analytics', catalog: cid, title: `k ${Number(kValue) || `chosen (${grain.value === 'coarse' ? 'coarse' : 'fine'})`} · ${method.value}` });
      location.hash = `#/analytics?catalog=${encodeURIComponent(cid)}&job=${encodeURIComponent(job.id)}`;
    } catch (err) {
      toast(errorText(err), true);
    }
  };
  select.addEventListener('change', () => { location.hash = `#/analytics?catalog=${encodeURIComponent(select.value)}`; });
  root.append(h('section', { class: 'panel' },
    h('div', { class: 'row' },
      h('label', { class: 'field' }, 'Catalog', select),
      h('label', { class: 'field' }, 'Clusters (0: chosen for reading)', k),
      h('label', { class: 'field' }, 'Granularity (when chosen)', grain),
      h('label', { class: 'field' }, 'Method', method),
      h('button', { type: 'button', class: 'primary', style: 'align-self:flex-end', dataset: { role: 'run-analytics' }, onclick: () => start(k.value) }, 'Run analytics')),
    status), result);
  const cid = select.value;
  const jobId = params.job || (recentJobs('analytics').find((j) => j.catalog === cid) || {}).id;
  if (!jobId) {
    fill(result, h('div', { class: 'panel empty' }, 'No run of this catalog from this browser yet: run the analytics above.'));
    return () => { live = false; };
  }
  const js = jobStatus('steps');
  fill(status, h('div', { class: 'row', style: 'margin-top:.8rem' }, h('span', { class: 'muted small' }, `job ${jobId}`), js));
  try {
    const job = await follow(jobId, js.update, () => live);
    if (job && job.state === 'done') await showRun(result, cid, jobId, job, (kk) => { k.value = kk; start(kk); });
  } catch (err) {
    js.fail(err);
  }
  return () => { live = false; };
}

async function showRun(box, cid, id, job, recluster) {
  fill(box, loading('Reading the run’s tables…'));
  const files = new Set(job.files);
  const read = async (name) => (files.has(name) ? parseCsv(await fileText(id, name)) : []);
  let points;
  let dups;
  let confused;
  let metrics = {};
  try {
    [points, dups, confused, metrics] = await Promise.all([read('clusters.csv'), read('duplicates.csv'), read('confused_items.csv'),
      files.has('metrics.json') ? fileText(id, 'metrics.json').then(JSON.parse) : {}]);
  } catch (err) {
    fill(box, errorBox(err));
    return;
  }
  for (const p of points) {
    p.cluster = Number(p.cluster);
    p.x = Number(p.x);
    p.y = Number(p.y);
    p.outlier_score = Number(p.outlier_score);
    p.isOutlier = p.outlier === 'true' || p.outlier === 'True' || p.outlier === '1';
    const slash = p.path.indexOf('/');
    p.item = p.item || p.path.slice(0, slash);
    p.image = p.path.slice(slash + 1);
  }
  const clusters = new Map();
  for (const p of points) {
    if (!clusters.has(p.cluster)) clusters.set(p.cluster, []);
    clusters.get(p.cluster).push(p);
  }
  const kNow = [...clusters.keys()].filter((c) => c >= 0).length;
  const dl = (name) => (files.has(name) ? h('button', { type: 'button', dataset: { role: `download-${name.replace('.', '-')}` },
    onclick: () => download(jobFilePath(id, name), `${id}-${name}`).catch((err) => toast(errorText(err), true)) }, name) : null);
  const kInput = h('input', { type: 'number', min: 2, max: Math.max(2, points.length), value: kNow, style: 'width:6em', dataset: { role: 'recluster-k' } });
  const flagged = points.filter((p) => p.quality);
  fill(box,
    h('div', { class: 'stats' },
      statTile(points.length, 'photos'), statTile(kNow, 'clusters'), statTile(points.filter((p) => p.isOutlier).length, 'outliers'), statTile(dups.length, 'duplicate pairs')),
    h('section', { class: 'panel' }, h('div', { class: 'row' }, h('h2', { style: 'margin:0' }, 'Map'),
      h('span', { class: 'muted small' }, 'Each dot a photo, coloured by cluster; rings: outliers. Hover for the photo, click to open its item; wheel zooms, drag pans, double-click resets.'),
      h('span', { class: 'spacer' }), dl('clusters.csv'), dl('duplicates.csv'), dl('confused_items.csv'), dl('metrics.json')),
    mapView(cid, points)),
    h('section', { class: 'panel', dataset: { role: 'clusters' } },
      h('div', { class: 'row', style: 'margin-bottom:.6rem' }, h('h2', { style: 'margin:0' }, `Clusters (${kNow})`),
        h('span', { class: 'muted small' }, metrics.k_chosen_by ? `k chosen by ${metrics.k_chosen_by}` : ''),
        h('span', { class: 'spacer' }), h('label', { class: 'row small' }, 'Re-cluster at k', kInput),
        h('button', { type: 'button', dataset: { role: 'recluster' }, onclick: () => recluster(kInput.value) }, 'Re-cluster')),
      h('div', { class: 'cluster-list' }, [...clusters.entries()].sort((a, b) => b[1].length - a[1].length).map(([c, ps]) => clusterCard(cid, id, files, c, ps)))),
    h('div', { class: 'split' },
      h('section', { class: 'panel', dataset: { role: 'outliers' } }, h('h2', {}, 'Outliers'),
        pairList(points.filter((p) => p.isOutlier).sort((a, b) => b.outlier_score - a.outlier_score).slice(0, 24)
          .map((p) => h('div', { class: 'mini' }, thumb(cid, p.item, p.image, p.path), h('a', { href: itemHref(cid, p.item), class: 'small' }, p.item),
            h('span', { class: 'muted small' }, `score ${p.outlier_score.toFixed(2)}`))), 'No outlier.')),
      h('section', { class: 'panel', dataset: { role: 'quality' } }, h('h2', {}, 'Quality flags'),
        flagged.length
          ? h('table', {}, h('tbody', {}, flagged.slice(0, 100).map((p) => h('tr', {}, h('td', {}, h('a', { href: itemHref(cid, p.item) }, p.path)), h('td', { class: 'small' }, p.quality)))))
          : h('p', { class: 'muted small' }, 'No photo flagged (dark, blurry, over-exposed, plain, odd size, greyscale).'))),
    h('div', { class: 'split' },
      h('section', { class: 'panel', dataset: { role: 'duplicates' } }, h('h2', {}, 'Duplicates'),
        pairList(dups.slice(0, 50).map((r) => pairRow(cid, r.path_a, r.path_b, `similarity ${Number(r.similarity).toFixed(3)}`)), 'No duplicate pair.')),
      h('section', { class: 'panel', dataset: { role: 'confused' } }, h('h2', {}, 'Confused item pairs'),
        h('p', { class: 'muted small' }, 'Items whose photos look alike: the matcher may mistake one for the other.'),
        confused.length
          ? h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Item'), h('th', {}, 'Item'), h('th', { class: 'num' }, 'Photos'), h('th', { class: 'num' }, 'Max similarity'))),
            h('tbody', {}, confused.slice(0, 50).map((r) => h('tr', {}, h('td', {}, h('a', { href: itemHref(cid, r.item_a) }, r.item_a)),
              h('td', {}, h('a', { href: itemHref(cid, r.item_b) }, r.item_b)), h('td', { class: 'num' }, r.images), h('td', { class: 'num' }, Number(r.max_similarity).toFixed(3))))))
          : h('p', { class: 'muted small' }, 'No confused pair.'))));
}

const statTile = (v, k) => h('div', { class: 'stat' }, h('div', { class: 'v' }, v), h('div', { class: 'k' }, k));
const itemHref = (cid, item) => `#/catalogs/${encodeURIComponent(cid)}?q=${encodeURIComponent(item)}`;
const pairList = (rows, empty) => (rows.length ? h('div', { class: 'minis' }, rows) : h('p', { class: 'muted small' }, empty));

function splitPath(path) {
  const i = path.indexOf('/');
  return [path.slice(0, i), path.slice(i + 1)];
}

function pairRow(cid, a, b, text) {
  const [ia, ma] = splitPath(a);
  const [ib, mb] = splitPath(b);
  return h('div', { class: 'pair' }, thumb(cid, ia, ma, a), thumb(cid, ib, mb, b),
    h('div', { class: 'small' }, h('a', { href: itemHref(cid, ia) }, ia), ' · ', h('a', { href: itemHref(cid, ib) }, ib), h('div', { class: 'muted' }, text)));
}

function clusterCard(cid, id, files, c, ps) {
  const sheet = `sheets/cluster_${c}.jpg`;
  const items = new Map();
  for (const p of ps) items.set(p.item, (items.get(p.item) || 0) + 1);
  const top = [...items.entries()].sort((a, b) => b[1] - a[1]).slice(0, 4);
  return h('article', { class: 'cluster', dataset: { cluster: c } },
    h('div', { class: 'row', style: 'gap:.5rem' }, h('span', { class: 'swatch', style: `background:${colourOf(c)}` }),
      h('strong', {}, c < 0 ? 'noise' : `cluster ${c}`), h('span', { class: 'muted small' }, `${ps.length} photos · ${items.size} items`)),
    h('div', { class: 'cluster-thumbs' }, ps.slice(0, 6).map((p) => thumb(cid, p.item, p.image, p.path))),
    h('div', { class: 'muted small' }, top.map(([it, n]) => `${it} (${n})`).join(' · ')),
    files.has(sheet) ? h('button', { type: 'button', class: 'link', onclick: () => download(jobFilePath(id, sheet), `${id}-cluster_${c}.jpg`) }, 'contact sheet') : null);
}

/** The 2-D map on a canvas: zoom (wheel), pan (drag), hover (a card with the photo), click. */
function mapView(cid, points) {
  const canvas = h('canvas', { class: 'map', dataset: { role: 'map' }, tabindex: 0 });
  const tip = h('div', { class: 'map-tip hidden', dataset: { role: 'map-tip' } });
  const wrap = h('div', { class: 'map-wrap' }, canvas, tip);
  const xs = points.map((p) => p.x);
  const ys = points.map((p) => p.y);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const view = { zoom: 1, dx: 0, dy: 0 };
  let size = { w: 800, h: 480 };
  const toScreen = (p) => {
    const sx = ((p.x - x0) / (x1 - x0 || 1)) * (size.w - 40) + 20;
    const sy = size.h - (((p.y - y0) / (y1 - y0 || 1)) * (size.h - 40) + 20);
    return [sx * view.zoom + view.dx, sy * view.zoom + view.dy];
  };
  let hover = null;
  const draw = () => {
    const dpr = window.devicePixelRatio || 1;
    size = { w: wrap.clientWidth || 800, h: 480 };
    canvas.width = size.w * dpr;
    canvas.height = size.h * dpr;
    canvas.style.width = `${size.w}px`;
    canvas.style.height = `${size.h}px`;
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = '#fbfcfd';
    ctx.fillRect(0, 0, size.w, size.h);
    const r = Math.max(2.5, Math.min(6, 900 / Math.sqrt(points.length + 1))) * Math.sqrt(view.zoom);
    for (const p of points) {
      const [sx, sy] = toScreen(p);
      if (sx < -10 || sy < -10 || sx > size.w + 10 || sy > size.h + 10) continue;
      ctx.beginPath();
      ctx.arc(sx, sy, r, 0, 2 * Math.PI);
      ctx.fillStyle = colourOf(p.cluster);
      ctx.globalAlpha = 0.8;
      ctx.fill();
      ctx.globalAlpha = 1;
      if (p.isOutlier) { ctx.lineWidth = 1.5; ctx.strokeStyle = '#111827'; ctx.stroke(); }
    }
    if (hover) {
      const [sx, sy] = toScreen(hover);
      ctx.beginPath();
      ctx.arc(sx, sy, r + 4, 0, 2 * Math.PI);
      ctx.lineWidth = 2;
      ctx.strokeStyle = '#111827';
      ctx.stroke();
    }
    canvas.dataset.drawn = String(points.length);
    const [px, py] = toScreen(points[0]); // where the first photo's dot is (tests hover it)
    canvas.dataset.probe = `${Math.round(px)},${Math.round(py)}`;
  };
  const nearest = (mx, my) => {
    let best = null;
    let bd = 12 * 12;
    for (const p of points) {
      const [sx, sy] = toScreen(p);
      const d = (sx - mx) ** 2 + (sy - my) ** 2;
      if (d < bd) { bd = d; best = p; }
    }
    return best;
  };
  const pos = (e) => { const b = canvas.getBoundingClientRect(); return [e.clientX - b.left, e.clientY - b.top]; };
  let drag = null;
  canvas.addEventListener('mousedown', (e) => { drag = { x: e.clientX, y: e.clientY, dx: view.dx, dy: view.dy, moved: false }; });
  window.addEventListener('mouseup', () => { setTimeout(() => { drag = null; }, 0); });
  canvas.addEventListener('mousemove', (e) => {
    if (drag && (e.buttons & 1)) {
      view.dx = drag.dx + e.clientX - drag.x;
      view.dy = drag.dy + e.clientY - drag.y;
      drag.moved = drag.moved || Math.abs(e.clientX - drag.x) + Math.abs(e.clientY - drag.y) > 3;
      tip.classList.add('hidden');
      draw();
      return;
    }
    const [mx, my] = pos(e);
    const p = nearest(mx, my);
    if (p !== hover) {
      hover = p;
      draw();
      if (!p) { tip.classList.add('hidden'); return; }
      fill(tip, thumb(cid, p.item, p.image, p.path), h('div', { class: 'small' }, h('strong', {}, p.item)),
        h('div', { class: 'muted small' }, `${p.cluster < 0 ? 'noise' : `cluster ${p.cluster}`}${p.isOutlier ? ' · outlier' : ''}${p.quality ? ` · ${p.quality}` : ''}`));
      tip.dataset.item = p.item;
      tip.classList.remove('hidden');
    }
    tip.style.left = `${Math.min(mx + 14, size.w - 170)}px`;
    tip.style.top = `${Math.min(my + 14, size.h - 200)}px`;
  });
  canvas.addEventListener('mouseleave', () => { hover = null; tip.classList.add('hidden'); draw(); });
  canvas.addEventListener('click', (e) => {
    if (drag && drag.moved) return;
    const p = nearest(...pos(e));
    if (p) location.hash = itemHref(cid, p.item);
  });
  canvas.addEventListener('wheel', (e) => {
    e.preventDefault();
    const [mx, my] = pos(e);
    const f = e.deltaY < 0 ? 1.25 : 0.8;
    const z = Math.min(50, Math.max(0.5, view.zoom * f));
    const k = z / view.zoom;
    view.dx = mx - (mx - view.dx) * k;
    view.dy = my - (my - view.dy) * k;
    view.zoom = z;
    canvas.dataset.zoom = z.toFixed(2);
    draw();
  }, { passive: false });
  canvas.addEventListener('dblclick', () => { Object.assign(view, { zoom: 1, dx: 0, dy: 0 }); draw(); });
  requestAnimationFrame(draw);
  new ResizeObserver(() => draw()).observe(wrap);
  return wrap;
}
