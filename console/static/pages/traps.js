// Camera traps: drop a card (photos or a zip), follow its job, then look through the card:
// every photo with its boxes, animal or empty, labels (a bar per label), the known individual,
// day or night; filters; the animal threshold as a slider; contact sheets; CSV and JSONL.

import { blobUrl, catalogPath, download, getJson, jobFilePath, postJson, upload } from '../api.js';
import { fill, fmt, h } from '../dom.js';
import { bitmapOf, drawBoxes } from '../draw.js';
import { fileText, follow, jobStatus, jsonLines, recentList, rememberJob, recentJobs } from '../jobs.js';
import { errorBox, errorText, loading, modal, toast } from '../ui.js';
import { zipImages } from '../zip.js';

const PAGE = 48;
const KINDS = ['animals', 'wildlife', 'products', 'vehicles', 'other'];
const ZIP = /\.zip$/i;
const PHOTO = /\.(jpe?g|png)$/i;
/** job id -> Map(card file name -> () => Promise<Blob>): the user's own copy, this tab only */
const LOCAL = new Map();

let live = false;

export async function render(root, { params }) {
  live = true;
  if (params.job) await renderCard(root, params.job);
  else await renderStart(root);
  return () => { live = false; };
}

// ---------------------------------------------------------------- a new card

async function renderStart(root) {
  root.append(h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Camera traps'),
    h('p', { class: 'muted' }, 'A whole card at once: which photos hold an animal, what it is (labels by example or by text prompts), which known individual; day or night. The job runs on the service; this page follows it.'))));
  let catalogs = [];
  try {
    ({ catalogs } = await getJson('/v1/catalogs'));
  } catch (err) {
    root.append(errorBox(err));
    return;
  }
  const options = optionsForm(catalogs);
  const uploads = h('div', { class: 'uploads', dataset: { role: 'card-uploads' } });
  const start = (files) => sendCard(files, options.read(), uploads);
  const input = h('input', { type: 'file', multiple: true, accept: 'image/jpeg,image/png,.zip,application/zip', class: 'hidden', dataset: { role: 'card-input' } });
  input.addEventListener('change', () => { const f = [...input.files]; input.value = ''; if (f.length) start(f); });
  const zone = h('div', { class: 'drop', dataset: { role: 'card-drop' } },
    h('p', {}, h('strong', {}, 'Drop a card here'), ' — its photos (JPEG, PNG) or the card zipped'),
    h('button', { type: 'button', class: 'primary', onclick: () => input.click() }, 'Choose photos or a zip'), input);
  zone.addEventListener('dragover', (e) => { e.preventDefault(); zone.classList.add('over'); });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    zone.classList.remove('over');
    const files = [...(e.dataTransfer?.files || [])];
    if (files.length) start(files);
  });
  root.append(
    h('section', { class: 'panel' }, h('h2', {}, 'New card'),
      h('div', { class: 'split' }, options.el, zone), uploads),
    labelSetsPanel(catalogs),
    h('section', { class: 'panel' }, h('h2', {}, 'Cards of this browser'),
      recentList('traps', (j) => `#/traps?job=${encodeURIComponent(j.id)}`, 'None yet: the cards you send from this browser are listed here.')),
  );
}

function optionsForm(catalogs) {
  const choose = (role, none) => h('select', { dataset: { role } }, h('option', { value: '' }, none),
    catalogs.map((c) => h('option', { value: c.id }, `${c.name} · ${c.items} ${c.items === 1 ? 'entry' : 'entries'}`)));
  const labels = choose('opt-labels', 'no labels');
  const catalog = choose('opt-catalog', 'no known individuals');
  const kind = h('select', { dataset: { role: 'opt-kind' } }, KINDS.map((k) => h('option', { value: k }, k)));
  const threshold = h('input', { type: 'number', min: 0, max: 1, step: 0.01, placeholder: 'service default (0.25)', dataset: { role: 'opt-threshold' } });
  const topK = h('input', { type: 'number', min: 1, max: 20, step: 1, value: 3, dataset: { role: 'opt-top-k' } });
  const verify = h('input', { type: 'checkbox', checked: true });
  const draw = h('input', { type: 'checkbox', checked: true });
  const prompts = h('textarea', { rows: 3, maxlength: 40000, placeholder: 'a photo of an Amur tiger\na photo of a leopard\na photo without an animal', dataset: { role: 'opt-prompts' } });
  const el = h('div', { class: 'form-grid' },
    h('label', { class: 'field' }, 'Label set (labels by example)', labels),
    h('label', { class: 'field' }, 'Or prompts (labels by text, one a line)', prompts),
    h('label', { class: 'field' }, 'Known individuals (a catalog)', catalog),
    h('label', { class: 'field' }, 'Kind of the known individuals', kind),
    h('label', { class: 'field' }, 'Animal threshold (detector score)', threshold),
    h('label', { class: 'field' }, 'Known individuals per animal', topK),
    h('div', { class: 'row small' }, h('label', {}, verify, ' keypoint-verify individuals'), h('label', {}, draw, ' draw each animal photo')),
    h('p', { class: 'muted small', style: 'grid-column:1/-1' },
      'The threshold can be moved afterwards over the finished card (MegaDetector users choose 0.15–0.3 per camera and species). ',
      'Prompts (labels by text, zero-shot CLIP) give each photo a probability per prompt; they need the operator’s CLIP files (SIGHTING_CLIP: without them the service answers 409). Give a label set or prompts, not both.'));
  return {
    el,
    read: () => ({
      labels: labels.value || undefined,
      prompts: prompts.value.trim() || undefined, // sent as a form field (up to 40,000 characters), not in the URL
      catalog: catalog.value || undefined,
      kind: kind.value,
      threshold: threshold.value === '' ? undefined : threshold.value,
      top_k: topK.value || undefined,
      verify: verify.checked ? 'true' : 'false',
      draw: draw.checked ? 'true' : 'false',
    }),
  };
}

/** One upload per zip, plus one for all loose photos; each followed to its job's end. */
async function sendCard(files, options, list) {
  const zips = files.filter((f) => ZIP.test(f.name) || /zip/.test(f.type));
  const photos = files.filter((f) => !zips.includes(f));
  const batches = zips.map((z) => ({ title: z.name, archive: z, photos: [] }));
  if (photos.length) batches.push({ title: photos.length === 1 ? photos[0].name : `${photos.length} photos`, photos });
  const single = batches.length === 1;
  await Promise.all(batches.map((b) => sendOne(b, options, list, single)));
}

async function sendOne(batch, options, list, openWhenDone) {
  const bar = h('progress', { max: 1, value: 0 });
  const status = h('span', { class: 'status muted' }, 'uploading');
  const row = h('div', { class: 'upload', dataset: { role: 'card-upload' } }, h('span', { class: 'name', title: batch.title }, batch.title), bar, status);
  list.prepend(row);
  const form = new FormData();
  for (const p of batch.photos) form.append('photos', p, p.name);
  if (batch.archive) form.append('archive', batch.archive, batch.archive.name);
  const { prompts, ...query } = options;
  if (prompts) form.append('prompts', prompts);
  let answer;
  try {
    answer = await upload('/v1/traps/batches', form, (f) => { bar.value = f; status.textContent = f < 1 ? `uploading ${Math.round(f * 100)} %` : 'storing the photos…'; }, query);
  } catch (err) {
    bar.value = 1;
    bar.classList.add('failed');
    status.textContent = `refused: ${errorText(err)}`;
    status.className = 'status bad';
    row.dataset.state = 'failed';
    return;
  }
  bar.classList.add('done');
  const up = answer.upload || {};
  status.textContent = `${up.photos ?? '?'} photos stored${up.skipped?.length ? `, ${up.skipped.length} skipped` : ''} · job ${answer.id}`;
  status.className = 'status ok';
  rememberJob({ id: answer.id, kind: 'traps', title: batch.title, threshold: options.threshold ? Number(options.threshold) : null, labels: options.labels || null, catalog: options.catalog || null });
  // the user's own copy of the photos: the grid draws the boxes on them
  const local = new Map(batch.photos.map((p) => [p.name, async () => p]));
  if (batch.archive) {
    try { for (const [k, v] of await zipImages(batch.archive)) local.set(k, v); } catch { /* the job's own pictures are used */ }
  }
  LOCAL.set(answer.id, local);
  const js = jobStatus('photos');
  const open = h('a', { class: 'button hidden', href: `#/traps?job=${encodeURIComponent(answer.id)}`, dataset: { role: 'open-card' } }, 'Open the card →');
  row.append(h('div', { class: 'row', style: 'grid-column:1/-1' }, js, open));
  try {
    const job = await follow(answer.id, js.update, () => live);
    if (job && job.state === 'done') {
      open.classList.remove('hidden');
      if (openWhenDone && live && !location.hash.includes('job=')) location.hash = open.getAttribute('href');
    }
  } catch (err) {
    js.fail(err);
  }
}

// ---------------------------------------------------------------- label sets

function labelSetsPanel(catalogs) {
  const name = h('input', { type: 'text', placeholder: 'e.g. Serengeti species', dataset: { role: 'ls-name' } });
  const rows = h('div', { class: 'label-rows' });
  const addRow = () => {
    const label = h('input', { type: 'text', placeholder: 'label (e.g. zebra)', dataset: { role: 'ls-label' } });
    const files = h('input', { type: 'file', multiple: true, accept: 'image/jpeg,image/png', dataset: { role: 'ls-files' } });
    rows.append(h('div', { class: 'row' }, label, files));
  };
  addRow();
  addRow();
  const out = h('div', { class: 'uploads' });
  const create = async () => {
    const labels = [...rows.children].map((r) => ({ label: r.querySelector('[data-role=ls-label]').value.trim(), files: [...r.querySelector('[data-role=ls-files]').files] }))
      .filter((x) => x.label || x.files.length);
    fill(out);
    if (!name.value.trim()) return out.append(errorBox('Name the label set.'));
    if (!labels.length || labels.some((x) => !x.label || !x.files.length)) return out.append(errorBox('Each label needs a name and at least one example photo (3–20 work best).'));
    try {
      const c = await postJson('/v1/catalogs', { json: { name: name.value.trim(), kind: 'other' } });
      for (const { label, files } of labels) {
        const form = new FormData();
        form.append('item_id', label.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[.-]+/, '') || 'label');
        for (const f of files) form.append('images', f, f.name);
        await upload(`${catalogPath(c.id)}/items`, form);
        out.append(h('div', { class: 'small' }, `✓ ${label}: ${files.length} examples`));
      }
      toast(`Label set “${c.name}” made`);
      location.reload();
    } catch (err) {
      out.append(errorBox(err));
    }
  };
  return h('section', { class: 'panel', dataset: { role: 'label-sets' } },
    h('h2', {}, 'Label sets by example'),
    h('p', { class: 'muted small' }, 'A label set is a catalog with one entry per label, its photos the examples (3–20 each; put night infrared examples in too). Any catalog can serve as one.'),
    h('div', { class: 'split' },
      h('div', {}, h('h3', {}, 'Your catalogs as label sets'),
        catalogs.length
          ? h('ul', { class: 'recent' }, catalogs.map((c) => h('li', {}, h('a', { href: `#/catalogs/${encodeURIComponent(c.id)}` }, c.name), ' ',
            h('span', { class: 'muted small' }, `${c.items} labels · ${c.images} examples — open to see each label's examples`))))
          : h('p', { class: 'muted small' }, 'None yet.')),
      h('div', {}, h('h3', {}, 'New label set'),
        h('label', { class: 'field' }, 'Name', name), rows,
        h('div', { class: 'row', style: 'margin-top:.5rem' },
          h('button', { type: 'button', class: 'link', onclick: addRow }, '+ another label'),
          h('button', { type: 'button', class: 'primary', dataset: { role: 'ls-create' }, onclick: create }, 'Create the label set')),
        out)));
}

// ---------------------------------------------------------------- a finished card

/** The photo's verdict at threshold ``t`` (the job's own threshold ``t0`` keeps its answer). */
export function verdict(rec, t, t0) {
  if (rec.error) return 'error';
  const best = Math.max(rec.confidence || 0, ...(rec.detections || []).map((d) => d.confidence));
  if (t >= t0) return rec.animal_present && best >= t ? 'animal' : 'empty';
  return rec.animal_present || best >= t ? 'animal' : 'empty';
}

/** The labels shown for a photo: its most confident animal's, else the whole photo's. */
function labelsOf(rec) {
  const dets = [...(rec.detections || [])].sort((a, b) => b.confidence - a.confidence);
  return (dets.find((d) => d.labels) || {}).labels || rec.labels || null;
}

/** The best known individual of a photo (highest score over its animals), or null. */
function individualOf(rec) {
  let best = null;
  for (const d of rec.detections || []) for (const m of d.matches || []) if (!best || m.score > best.score) best = m;
  return best;
}

/** The job's picture of a card file, as traps/pictures.py names it (photos/index.json, when
 * the job wrote one, says it exactly). */
export function pictureName(file, index) {
  if (index && index[file]) return index[file];
  const stem = file.replaceAll('/', '__').replace(/\.[^./]*$/, '');
  return `photos/${stem.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^[.-]+/, '').slice(0, 120) || 'photo'}.jpg`;
}

async function renderCard(root, id) {
  const remembered = recentJobs('traps').find((j) => j.id === id) || {};
  root.append(h('div', { class: 'crumbs' }, h('a', { href: '#/traps' }, 'Camera traps'), ' / '));
  const head = h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, remembered.title || `Card ${id}`), h('p', { class: 'muted mono small' }, `job ${id}`)));
  const body = h('div', {}, loading('Asking for the job…'));
  root.append(head, body);
  let job;
  try {
    const js = jobStatus('photos');
    fill(body, h('section', { class: 'panel' }, js));
    job = await follow(id, js.update, () => live);
    if (!job) return;
    if (job.state !== 'done') return;
  } catch (err) {
    fill(body, errorBox(err));
    return;
  }
  let records;
  let index = null;
  try {
    [records, index] = await Promise.all([fileText(id, 'results.jsonl').then(jsonLines),
      (job.files || []).includes('photos/index.json') ? fileText(id, 'photos/index.json').then(JSON.parse).catch(() => null) : null]);
  } catch (err) {
    fill(body, errorBox(err));
    return;
  }
  records.sort((a, b) => (a.file < b.file ? -1 : 1));
  const t0 = remembered.threshold ?? 0.25;
  fill(body, cardView(id, job, records, t0, index));
}

function cardView(id, job, records, t0, index) {
  const files = new Set(job.files || []);
  const local = LOCAL.get(id);
  const state = { t: t0, page: 0, verdict: '', label: '', individual: '', time: '', q: '' };

  // --- the threshold slider and the counts
  const slider = h('input', { type: 'range', min: 0.05, max: 0.95, step: 0.01, value: t0, dataset: { role: 'threshold' } });
  const tValue = h('span', { class: 'mono', dataset: { role: 'threshold-value' } }, t0.toFixed(2));
  const moved = h('span', { class: 'small', dataset: { role: 'moved' } });
  const stats = {};
  const stat = (k, label) => { stats[k] = h('div', { class: 'v', dataset: { stat: k } }, '–'); return h('div', { class: 'stat' }, stats[k], h('div', { class: 'k' }, label)); };
  const counts = () => {
    const c = { animal: 0, empty: 0, error: 0 };
    let toAnimal = 0;
    let toEmpty = 0;
    for (const r of records) {
      const v = verdict(r, state.t, t0);
      c[v] += 1;
      const was = verdict(r, t0, t0);
      if (v === 'animal' && was === 'empty') toAnimal += 1;
      if (v === 'empty' && was === 'animal') toEmpty += 1;
    }
    stats.photos.textContent = records.length;
    stats.animal.textContent = c.animal;
    stats.empty.textContent = c.empty;
    stats.night.textContent = records.filter((r) => r.night).length;
    stats.errors.textContent = c.error;
    tValue.textContent = state.t.toFixed(2);
    moved.textContent = state.t === t0
      ? `the job's threshold: ${c.animal} photos with an animal, ${c.empty} empty`
      : `at ${state.t.toFixed(2)} instead of the job's ${t0.toFixed(2)}: ${toAnimal} photo${toAnimal === 1 ? '' : 's'} move from empty to animal, ${toEmpty} from animal to empty`;
    moved.dataset.toAnimal = toAnimal;
    moved.dataset.toEmpty = toEmpty;
  };
  slider.addEventListener('input', () => { state.t = Number(slider.value); counts(); drawGrid(); });

  // --- filters
  const labelNames = [...new Set(records.map((r) => labelsOf(r)?.top).filter(Boolean))].sort();
  const people = [...new Set(records.map((r) => individualOf(r)?.item_id).filter(Boolean))].sort();
  const sel = (role, key, first, opts) => {
    const s = h('select', { dataset: { role } }, h('option', { value: '' }, first), opts.map(([v, t]) => h('option', { value: v }, t)));
    s.addEventListener('change', () => { state[key] = s.value; state.page = 0; drawGrid(); });
    return s;
  };
  const search = h('input', { type: 'search', placeholder: 'file name', dataset: { role: 'card-search' } });
  search.addEventListener('input', () => { state.q = search.value.toLowerCase(); state.page = 0; drawGrid(); });
  const filters = h('div', { class: 'row' },
    sel('f-verdict', 'verdict', 'animal or empty', [['animal', 'animal'], ['empty', 'empty'], ['error', 'unreadable']]),
    sel('f-label', 'label', 'any label', [...labelNames.map((l) => [l, l])]),
    sel('f-individual', 'individual', 'any individual', [['-', 'no known individual'], ...people.map((p) => [p, p])]),
    sel('f-time', 'time', 'day or night', [['day', 'day'], ['night', 'night']]),
    search);

  // --- downloads and contact sheets
  const dl = (name, label) => h('button', { type: 'button', dataset: { role: `download-${name.replace('.', '-')}` },
    onclick: () => download(jobFilePath(id, name), `${id}-${name}`).catch((err) => toast(errorText(err), true)) }, label);
  const sheet = (name, title) => (files.has(name)
    ? h('figure', { class: 'sheet' }, h('figcaption', { class: 'small muted' }, title), jobImage(id, name, title, true))
    : null);

  const grid = h('div', { class: 'trap-grid', dataset: { role: 'trap-grid' } });
  const pager = h('div', { class: 'pager' });
  const shownCount = h('span', { class: 'muted small', dataset: { role: 'shown' } });
  const drawGrid = () => {
    const shown = records.filter((r) => {
      const v = verdict(r, state.t, t0);
      if (state.verdict && v !== state.verdict) return false;
      if (state.label && labelsOf(r)?.top !== state.label) return false;
      if (state.individual === '-' && individualOf(r)) return false;
      if (state.individual && state.individual !== '-' && individualOf(r)?.item_id !== state.individual) return false;
      if (state.time && (state.time === 'night') !== Boolean(r.night)) return false;
      if (state.q && !r.file.toLowerCase().includes(state.q)) return false;
      return true;
    });
    const pages = Math.max(1, Math.ceil(shown.length / PAGE));
    state.page = Math.min(state.page, pages - 1);
    const p = state.page;
    shownCount.textContent = `${shown.length} of ${records.length} photos`;
    fill(grid, shown.slice(p * PAGE, (p + 1) * PAGE).map((r) => photoTile(id, r, state.t, t0, files, local, index)));
    fill(pager, pages > 1 ? [
      h('button', { type: 'button', disabled: p === 0, onclick: () => { state.page -= 1; drawGrid(); } }, '← Previous'),
      h('span', { class: 'muted small' }, `page ${p + 1} of ${pages}`),
      h('button', { type: 'button', disabled: p + 1 >= pages, onclick: () => { state.page += 1; drawGrid(); } }, 'Next →')] : []);
  };

  const view = h('div', {},
    h('div', { class: 'stats' }, stat('photos', 'photos'), stat('animal', 'with an animal'), stat('empty', 'empty'), stat('night', 'night (infrared)'), stat('errors', 'unreadable')),
    h('section', { class: 'panel' },
      h('div', { class: 'slider' }, 'Animal threshold', slider, tValue),
      h('p', { style: 'margin:.5rem 0 0' }, moved),
      h('p', { class: 'muted small', style: 'margin:0' }, 'Below the job’s threshold a photo becomes “animal” by its best detector score; its boxes were not kept, so it shows none. Downloads are the job’s own files.')),
    h('section', { class: 'panel' }, h('div', { class: 'row' }, filters, h('span', { class: 'spacer' }), shownCount,
      dl('results.csv', 'Download CSV'), dl('results.jsonl', 'Download JSONL'))),
    grid, pager,
    h('section', { class: 'panel', style: 'margin-top:1.2rem' }, h('h2', {}, 'Contact sheets'),
      h('div', { class: 'sheets' }, sheet('animals.jpg', 'Photos with an animal, most confident first'),
        sheet('empties.jpg', '“Empty” photos the detector was least sure of: check these first'))));
  counts();
  drawGrid();
  return view;
}

/** A job picture (fetched with the key) that opens large in a dialog on click. */
function jobImage(id, name, alt, zoom = false) {
  const img = h('img', { alt, loading: 'lazy', dataset: { file: name } });
  blobUrl(jobFilePath(id, name)).then((u) => { img.src = u; }, () => img.classList.add('broken'));
  if (zoom) img.addEventListener('click', () => modal({ title: alt, wide: true, body: h('img', { class: 'explain', src: img.src, alt }) }));
  return img;
}

export function photoTile(id, rec, t, t0, files, local, index = null) {
  const v = verdict(rec, t, t0);
  const labels = labelsOf(rec);
  const who = individualOf(rec);
  const picture = h('div', { class: 'trap-pic' });
  const getLocal = local && (local.get(rec.file) || local.get(rec.file.split('/').pop()));
  if (getLocal && !rec.error) {
    const canvas = h('canvas', { class: 'photo', dataset: { role: 'trap-canvas' } });
    picture.append(canvas);
    getLocal().then(bitmapOf).then((bm) => {
      const scale = Math.min(1, 480 / bm.width);
      canvas.width = Math.round(bm.width * scale);
      canvas.height = Math.round(bm.height * scale);
      const ctx = canvas.getContext('2d');
      ctx.drawImage(bm, 0, 0, canvas.width, canvas.height);
      const dets = (rec.detections || []).filter((d) => d.confidence >= t).map((d) => ({ ...d, matches: d.matches || [] }));
      drawBoxes(ctx, dets, { scale: canvas.width / (rec.width || bm.width), label: (d) => `${d.labels?.top || d.class} ${fmt.score(d.confidence)}` });
    }).catch(() => picture.append(h('span', { class: 'muted small' }, 'not readable here')));
  } else if (files.has(pictureName(rec.file, index))) {
    picture.append(jobImage(id, pictureName(rec.file, index), rec.file, true));
  } else {
    picture.append(h('span', { class: 'muted small' }, rec.error ? 'unreadable' : 'no picture kept (empty photo)'));
  }
  const bars = labels
    ? h('div', { class: 'bars', dataset: { role: 'label-bars' } },
      [...labels.labels].sort((a, b) => b.probability - a.probability).slice(0, 4).concat([{ label: 'unknown', probability: labels.unknown }])
        .map((l) => h('div', { class: 'bar-row', title: `${l.label}: ${fmt.pct(l.probability)}` },
          h('span', { class: 'bar-label' }, l.label),
          h('span', { class: 'bar' }, h('span', { class: l.label === 'unknown' ? 'fill unknown' : 'fill', style: `width:${Math.round(l.probability * 100)}%` })),
          h('span', { class: 'bar-p' }, fmt.pct(l.probability)))))
    : null;
  return h('article', { class: `card trap ${v}`, dataset: { file: rec.file, verdict: v } },
    picture,
    h('div', { class: 'body' },
      h('div', { class: 'title', dataset: { role: 'file' } }, rec.file),
      h('div', { class: 'row small', style: 'gap:.35rem' },
        h('span', { class: v === 'animal' ? 'badge ok' : v === 'error' ? 'badge bad' : 'badge' }, v === 'error' ? 'unreadable' : v),
        rec.error ? null : h('span', { class: 'muted' }, `score ${fmt.score(Math.max(rec.confidence || 0, ...(rec.detections || []).map((d) => d.confidence)))}`),
        rec.error ? null : h('span', { class: 'badge' }, rec.night ? 'night' : 'day'),
        rec.time ? h('span', { class: 'muted' }, rec.time) : null),
      rec.error ? h('div', { class: 'small error' }, rec.error) : null,
      bars,
      who ? h('div', { class: 'small', dataset: { role: 'individual' } }, 'individual ', h('strong', {}, who.item_id), ` ${fmt.score(who.score)} `,
        who.verified ? h('span', { class: 'badge ok' }, 'verified') : h('span', { class: 'badge' }, 'candidate')) : null));
}
