// Review: kept sightings as a queue. The crop beside its ranked candidates; keys 1-9 confirm
// candidate N (same), n says none, c makes a new item of the crop, arrows move. After a verdict
// the next sighting shows at once (no reload); the queue refills from the API as it runs low.

import { call, catalogPath, getJson, postJson } from '../api.js';
import { asText, ago, fill, fmt, h } from '../dom.js';
import { catalogSelect, errorBox, errorText, explain, kvEditor, loading, modal, thumb, toast } from '../ui.js';

const PAGE = 50;
const STATES = [['unreviewed', 'Unreviewed'], ['confirmed', 'Confirmed'], ['none', 'None of them'], ['new_item', 'New item'], ['', 'Any state']];
const SOURCE_KINDS = ['detect', 'search', 'stream', 'video', 'trap'];
const VERDICT_WORDS = { same: 'confirmed', none: 'none of them', new_item: 'new item' };
const ADD_REF = 'sighting.review.addReference';

const sightingsPath = (cid) => `${catalogPath(cid)}/sightings`;
const sightingPath = (cid, sid) => `${sightingsPath(cid)}/${encodeURIComponent(sid)}`;

export async function render(root, { params }) {
  const { select, catalogs } = await catalogSelect({ selected: params.catalog });
  root.append(h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Review'),
    h('p', { class: 'muted' }, 'Kept sightings, one at a time: confirm the right candidate, say none, or make a new item. Each verdict teaches the catalog’s calibration.'))));
  if (!catalogs.length) {
    root.append(h('div', { class: 'panel empty' }, 'No catalog yet. ', h('a', { href: '#/catalogs' }, 'Create one'), ', then keep answers with ', h('code', {}, 'keep=true'), '.'));
    return null;
  }
  const cid = select.value;
  const state = params.state ?? 'unreviewed';
  const source = params.source || '';

  // filters: each change is a new hash (a link to this very queue)
  const stateSel = h('select', { 'aria-label': 'state', dataset: { role: 'state' } },
    STATES.map(([v, t]) => h('option', { value: v, selected: v === state }, t)));
  const sourceIn = h('input', { type: 'search', list: 'review-sources', value: source, placeholder: 'stream, camera, file or kind', dataset: { role: 'source-filter' }, 'aria-label': 'source' });
  const go = () => {
    const q = new URLSearchParams({ catalog: select.value, state: stateSel.value });
    if (sourceIn.value.trim()) q.set('source', sourceIn.value.trim());
    location.hash = `#/review?${q}`;
  };
  select.addEventListener('change', go);
  stateSel.addEventListener('change', go);
  sourceIn.addEventListener('change', go);
  const addRef = h('input', { type: 'checkbox', checked: localStorage.getItem(ADD_REF) === '1', dataset: { role: 'add-reference' } });
  addRef.addEventListener('change', () => localStorage.setItem(ADD_REF, addRef.checked ? '1' : '0'));

  const progress = h('progress', { max: 1, value: 0, dataset: { role: 'progress-bar' } });
  const progressText = h('span', { class: 'small', dataset: { role: 'progress' } });
  const stage = h('div', { dataset: { role: 'review' } }, loading('Loading the queue…'));
  root.append(
    h('section', { class: 'panel' },
      h('div', { class: 'row' },
        h('label', { class: 'field' }, 'Catalog', select),
        h('label', { class: 'field' }, 'State', stateSel),
        h('label', { class: 'field' }, 'Source', sourceIn,
          h('datalist', { id: 'review-sources' }, SOURCE_KINDS.map((k) => h('option', { value: k })))),
        h('label', { class: 'row', style: 'gap:.4rem', title: 'With a confirmation (keys 1-9), the crop also becomes a reference photo of the item' }, addRef, 'Add the crop as a reference photo')),
      h('div', { class: 'row', style: 'margin-top:.7rem;gap:.6rem' }, progress, progressText),
      h('p', { class: 'muted small', style: 'margin:.5rem 0 0' },
        h('kbd', {}, '1'), '–', h('kbd', {}, '9'), ' confirm candidate N · ', h('kbd', {}, 'n'), ' none of them · ',
        h('kbd', {}, 'c'), ' new item · ', h('kbd', {}, '←'), ' ', h('kbd', {}, '→'), ' previous / next · click a candidate to see why it matched')),
    stage);

  const q = new Queue(cid, { state, source });
  let busy = false;
  const crops = new Map(); // sighting id -> Promise<Blob> of its crop

  const cropOf = (s) => {
    if (!crops.has(s.sighting_id)) {
      const p = call('GET', s.crop_url || `${sightingPath(cid, s.sighting_id)}/crop`).then((r) => r.blob());
      p.catch(() => crops.delete(s.sighting_id));
      crops.set(s.sighting_id, p);
    }
    return crops.get(s.sighting_id);
  };

  const showProgress = () => {
    const left = q.unreviewed ?? 0;
    progress.max = Math.max(1, q.reviewed + left);
    progress.value = q.reviewed;
    progressText.textContent = `${q.reviewed} reviewed here / ${q.reviewed + left} · ${left} unreviewed in the catalog · `
      + (q.items.length ? `sighting ${q.pos + 1} of ${q.total ?? q.items.length}${state ? ` ${state.replace('_', ' ')}` : ''}` : 'nothing to show');
    progressText.dataset.reviewed = String(q.reviewed);
    progressText.dataset.unreviewed = String(left);
  };

  const show = () => {
    showProgress();
    const s = q.current();
    if (!s) {
      fill(stage, h('div', { class: 'panel empty', dataset: { role: 'done' } },
        q.items.length ? 'End of the queue. ' : (state === 'unreviewed' ? 'Nothing to review: no unreviewed sighting here. ' : 'No sighting matches these filters. '),
        'Keep answers with ', h('code', {}, 'keep=true'), ' on detect, search, stream frames or videos.'));
      return;
    }
    fill(stage, sightingView(cid, s, q.pos, { cropOf, onCandidate: (i) => verdict({ verdict: 'same', item_id: s.candidates[i].item_id }) }));
    // the next crops and thumbnails load while this one is read
    for (const n of q.items.slice(q.pos + 1, q.pos + 3)) cropOf(n).catch(() => {});
  };

  const move = async (step) => {
    if (busy) return;
    if (step > 0 && q.pos + 1 >= q.items.length) {
      busy = true;
      try { await q.more(); } catch (err) { toast(errorText(err), true); }
      busy = false;
    }
    q.pos = Math.max(0, Math.min(q.items.length, q.pos + step));
    show();
  };

  const verdict = async (body) => {
    const s = q.current();
    if (!s || busy) return;
    if (body.verdict === 'same') body.add_reference = addRef.checked;
    busy = true;
    stage.dataset.busy = '1';
    try {
      const answer = await postJson(`${sightingPath(cid, s.sighting_id)}/review`, { json: body });
      q.reviewedOne(s, answer.sighting);
      const what = VERDICT_WORDS[body.verdict] || body.verdict;
      const item = answer.sighting?.item_id || body.item_id;
      const extra = answer.created_item ? ' created, the crop its first photo' : (answer.reference_image_id ? ' · the crop added as a reference photo' : '');
      toast(`${what}${item ? `: ${item}` : ''}${extra}`);
      busy = false;
      await move(1);
    } catch (err) {
      toast(errorText(err), true);
    } finally {
      busy = false;
      delete stage.dataset.busy;
    }
  };

  const newItem = async () => {
    const s = q.current();
    if (!s || busy || document.querySelector('dialog[open]')) return;
    const id = h('input', { type: 'text', placeholder: 'leave empty for an id made by the service', dataset: { role: 'new-item-id' }, 'aria-label': 'new item id', style: 'width:100%' });
    const meta = kvEditor({});
    let body = null;
    const ok = () => {
      body = { verdict: 'new_item', metadata: meta.read() };
      if (id.value.trim()) body.item_id = id.value.trim();
      id.closest('dialog').close();
    };
    id.addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); ok(); } });
    const shown = modal({
      title: 'A new item from this crop',
      body: h('div', { dataset: { role: 'new-item' } },
        h('label', { class: 'field', style: 'display:block;margin-bottom:.8rem' }, 'Item id', id),
        h('p', { class: 'muted small' }, 'Metadata (optional)'), meta),
      foot: (close) => [
        h('button', { type: 'button', onclick: close }, 'Cancel'),
        h('button', { type: 'button', class: 'primary', dataset: { role: 'new-item-save' }, onclick: ok }, 'Create the item'),
      ],
    });
    id.focus();
    await shown;
    if (body) await verdict(body);
  };

  const onKey = (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || e.repeat) return;
    if (document.querySelector('dialog[open]')) return;
    const t = e.target;
    if (t instanceof HTMLElement && (t.isContentEditable || ['INPUT', 'SELECT', 'TEXTAREA'].includes(t.tagName))) return;
    const s = q.current();
    if (/^[1-9]$/.test(e.key)) {
      const i = Number(e.key) - 1;
      if (s && s.candidates[i]) verdict({ verdict: 'same', item_id: s.candidates[i].item_id });
      else if (s) toast(`No candidate ${e.key} for this sighting.`, true);
    } else if (e.key === 'n' || e.key === 'N') verdict({ verdict: 'none' });
    else if (e.key === 'c' || e.key === 'C') newItem();
    else if (e.key === 'ArrowRight' || e.key === 'ArrowDown') move(1);
    else if (e.key === 'ArrowLeft' || e.key === 'ArrowUp') move(-1);
    else return;
    e.preventDefault();
  };
  document.addEventListener('keydown', onKey);
  stage.addEventListener('click', (e) => {
    const b = e.target.closest('[data-verdict]');
    if (!b) return;
    if (b.dataset.verdict === 'none') verdict({ verdict: 'none' });
    else if (b.dataset.verdict === 'new_item') newItem();
    else if (b.dataset.verdict === 'prev') move(-1);
    else if (b.dataset.verdict === 'next') move(1);
  });

  try {
    await q.more();
    show();
  } catch (err) {
    fill(stage, errorBox(err));
  }
  return () => document.removeEventListener('keydown', onKey);
}

/** The sightings of one filtered list, loaded a page at a time; ``pos`` is the one shown. */
class Queue {
  constructor(cid, { state, source }) {
    this.cid = cid;
    this.filter = { state, source };
    this.items = [];
    this.ids = new Set();
    this.pos = 0;
    this.offset = 0; // where the next page starts in the server's (shrinking) list
    this.total = null;
    this.unreviewed = null;
    this.reviewed = 0; // verdicts given on this page
    this.done = false;
  }

  current() {
    return this.items[this.pos] || null;
  }

  async more() {
    if (this.done) return;
    const a = await getJson(sightingsPath(this.cid), { query: { ...this.filter, offset: this.offset, limit: PAGE } });
    const fresh = a.sightings.filter((s) => !this.ids.has(s.sighting_id));
    for (const s of fresh) this.ids.add(s.sighting_id);
    this.items.push(...fresh);
    this.offset += a.sightings.length;
    if (this.total === null) this.total = a.total;
    this.unreviewed = a.counts?.unreviewed ?? this.unreviewed;
    if (a.sightings.length < PAGE) this.done = true;
  }

  /** A verdict stored: the sighting as the API now has it; it may have left the filter. */
  reviewedOne(old, now) {
    if (!now) return;
    const i = this.items.indexOf(old);
    if (i >= 0) this.items[i] = now;
    if (old.state === 'unreviewed') {
      this.reviewed += 1;
      if (this.unreviewed) this.unreviewed -= 1;
    }
    if (this.filter.state && now.state !== this.filter.state && old.state === this.filter.state) this.offset = Math.max(0, this.offset - 1);
  }
}

function sourceText(src = {}) {
  const parts = [src.kind];
  if (src.file_name) parts.push(src.file_name);
  if (src.camera) parts.push(`camera ${src.camera}`);
  if (src.stream_id) parts.push(`stream ${src.stream_id}`);
  if (src.frame_index !== null && src.frame_index !== undefined) parts.push(`frame ${src.frame_index}`);
  if (src.track_id !== null && src.track_id !== undefined) parts.push(`track ${src.track_id}`);
  if (src.exif_time) parts.push(`taken ${src.exif_time}`);
  if (src.job_id) parts.push(`job ${src.job_id}`);
  return parts.filter(Boolean).map(asText).join(' · ');
}

function sightingView(cid, s, pos, { cropOf, onCandidate }) {
  const crop = h('img', { class: 'query-photo', alt: 'the sighting’s crop', dataset: { role: 'crop' } });
  cropOf(s).then((b) => { crop.src = URL.createObjectURL(b); }, () => crop.replaceWith(h('div', { class: 'error' }, 'The crop could not be loaded.')));
  const last = (s.reviews || []).at(-1);
  const stateBadge = h('span', { class: s.state === 'unreviewed' ? 'badge warn' : 'badge ok', dataset: { role: 'state-badge' } }, s.state.replace('_', ' '));
  const cands = s.candidates || [];
  return h('div', { class: 'review-split', dataset: { role: 'sighting', sighting: s.sighting_id, state: s.state, pos: pos + 1 } },
    h('section', { class: 'panel' },
      h('div', { class: 'row', style: 'justify-content:space-between' }, h('h3', { style: 'margin:0' }, s.class_name && s.class_name !== 'image' ? s.class_name : (s.source?.kind === 'search' ? 'whole photo' : 'sighting')), stateBadge),
      crop,
      h('p', { class: 'small', dataset: { role: 'sighting-source' } }, sourceText(s.source)),
      h('p', { class: 'muted small' },
        `${s.class_name ? `confidence ${fmt.score(s.confidence)} · ` : ''}kept ${ago(s.kept_at)} · catalog version ${s.catalog_version ?? '–'} · calibration ${s.calibration || '–'}`),
      last ? h('p', { class: 'small', dataset: { role: 'last-review' } }, `Last review: ${VERDICT_WORDS[last.verdict] || last.verdict}${last.item_id ? ` ${last.item_id}` : ''} · ${ago(last.at)}`) : null,
      h('div', { class: 'row', style: 'margin-top:.6rem' },
        h('button', { type: 'button', dataset: { verdict: 'prev' }, title: 'previous (←)' }, '←'),
        h('button', { type: 'button', dataset: { verdict: 'none' }, title: 'none of the candidates (n)' }, h('kbd', {}, 'n'), ' None of them'),
        h('button', { type: 'button', dataset: { verdict: 'new_item' }, title: 'a new item from this crop (c)' }, h('kbd', {}, 'c'), ' New item'),
        h('button', { type: 'button', dataset: { verdict: 'next' }, title: 'next (→)' }, '→'))),
    h('section', { class: 'panel' },
      h('h3', {}, `Candidates, best first (${cands.length})`),
      cands.length
        ? h('div', { class: 'review-cands', dataset: { role: 'candidates' } }, cands.map((m, i) => candidateRow(cid, s, m, i, { cropOf, onCandidate })))
        : h('p', { class: 'muted' }, 'No candidate was kept with this sighting: say none (n) or make a new item (c).')));
}

function candidateRow(cid, s, m, i, { cropOf, onCandidate }) {
  const numbers = `rank ${i + 1} · score ${fmt.score(m.score)} · ${m.verified ? 'verified' : 'not verified'}${m.similarity !== undefined && m.similarity !== null ? ` · similarity ${m.similarity.toFixed(3)}` : ''}${m.inliers !== undefined && m.inliers !== null ? ` · ${m.inliers} inliers` : ''}`;
  const chosen = s.state === 'confirmed' && s.item_id === m.item_id;
  const why = () => cropOf(s).then((crop) => explain(cid, crop, m.item_id, { numbers }), (err) => toast(errorText(err), true));
  return h('div', { class: chosen ? 'review-cand chosen' : 'review-cand', dataset: { role: 'candidate', item: m.item_id, rank: i + 1, score: m.score } },
    h('span', { class: 'n', title: `press ${i + 1} to confirm` }, i < 9 ? String(i + 1) : ''),
    h('button', { type: 'button', class: 'cand', title: `${numbers} — click to see why it matched`, dataset: { role: 'explain' }, onclick: why },
      m.image_id ? thumb(cid, m.item_id, m.image_id, m.item_id) : h('div', { class: 'thumb broken' }),
      h('div', { class: 'info' },
        h('div', { class: 'item' }, m.item_id),
        h('div', { class: 'row', style: 'gap:.4rem' }, h('span', { class: 'score' }, fmt.score(m.score)),
          m.verified ? h('span', { class: 'badge ok' }, 'verified') : h('span', { class: 'badge' }, m.checked === false ? 'not checked' : 'not verified')),
        h('div', { class: 'muted small' }, numbers.split(' · ').slice(3).join(' · ')))),
    h('button', { type: 'button', class: 'primary', dataset: { role: 'confirm' }, title: `the same as ${m.item_id}${i < 9 ? ` (${i + 1})` : ''}`, onclick: () => onCandidate(i) }, 'Same'));
}
