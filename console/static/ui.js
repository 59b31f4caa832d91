// Shared pieces of the pages: toasts, dialogs, photo pickers, thumbnails, a metadata editor,
// the explanation viewer and a catalog chooser.

import { ApiError, call, catalogPath, getJson, imageUrl, photoType } from './api.js';
import { asText, fill, h } from './dom.js';

export function toast(message, bad = false) {
  const t = h('div', { class: bad ? 'toast bad' : 'toast', role: 'status' }, message);
  document.getElementById('toasts').append(t);
  setTimeout(() => t.remove(), bad ? 7000 : 3500);
}

/** Remove every toast (a new page starts with none of the old page's messages). */
export function clearToasts() {
  fill(document.getElementById('toasts'));
}

const LOCATIONS = new Set(['json', 'query', 'form', 'files', 'headers', 'view_args', 'path', 'cookies']);

/**
 * The field reasons of a 400/422 answer's ``details`` as lines, e.g. ``name: Must not be
 * blank.`` (webargs nests them as location -> field -> messages; other shapes are walked).
 */
export function detailLines(details) {
  const out = [];
  const walk = (v, path) => {
    if (v === null || v === undefined || v === '') return;
    if (Array.isArray(v)) {
      if (v.every((x) => typeof x !== 'object' || x === null)) out.push(`${path.join('.') || 'input'}: ${v.join(' ')}`);
      else v.forEach((x, i) => walk(x, [...path, String(i)]));
    } else if (typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) walk(x, path.length === 0 && LOCATIONS.has(k) ? path : [...path, k]);
    } else out.push(`${path.join('.') || 'input'}: ${v}`);
  };
  walk(details, []);
  return out;
}

/** A readable message for an error of a call (with the server's field reasons on a 400/422). */
export function errorText(err) {
  if (err instanceof ApiError) {
    const why = [400, 422].includes(err.status) ? detailLines(err.details) : [];
    const text = why.length ? `${err.message}: ${why.join('; ')}` : err.message;
    return err.status ? `${text} (${err.status})` : text;
  }
  return String((err && err.message) || err);
}

export const errorBox = (err) => h('div', { class: 'error', role: 'alert' }, errorText(err));
export const loading = (what) => h('div', { class: 'loading' }, h('span', { class: 'spinner' }), what);

/** A modal dialog; resolves when closed. ``build(close)`` gives the body and foot. */
export function modal({ title, wide = false, body, foot }) {
  const dlg = h('dialog', { class: wide ? 'wide' : '' });
  const close = () => dlg.close();
  dlg.append(
    h('div', { class: 'd-head' }, h('h2', {}, title), h('button', { class: 'link', type: 'button', 'aria-label': 'Close', onclick: close }, '✕')),
    h('div', { class: 'd-body' }, body),
  );
  if (foot) dlg.append(h('div', { class: 'd-foot' }, foot(close)));
  document.body.append(dlg);
  dlg.showModal();
  return new Promise((resolve) => dlg.addEventListener('close', () => {
    dlg.remove();
    resolve(dlg.returnValue);
  }));
}

/** Ask before something that cannot be undone; resolves to true when confirmed. */
export async function confirmDialog(title, message, action = 'Delete') {
  let ok = false;
  await modal({
    title,
    body: h('p', {}, message),
    foot: (close) => [
      h('button', { type: 'button', onclick: close }, 'Cancel'),
      h('button', { type: 'button', class: 'danger solid', dataset: { confirm: '1' }, onclick: () => { ok = true; close(); } }, action),
    ],
  });
  return ok;
}

/** A reference image's thumbnail (fetched with the key, shown as a blob: URL). */
export function thumb(cid, item, imageId, alt = '') {
  const img = h('img', { alt, loading: 'lazy' });
  const box = h('div', { class: 'thumb' }, img);
  imageUrl(cid, item, imageId).then((u) => { img.src = u; }, () => box.classList.add('broken'));
  return box;
}

/** Files dropped on ``el`` (highlighted while dragging over it). */
export function onDrop(el, handler) {
  el.addEventListener('dragover', (e) => { e.preventDefault(); el.classList.add('over'); });
  el.addEventListener('dragleave', () => el.classList.remove('over'));
  el.addEventListener('drop', (e) => {
    e.preventDefault();
    el.classList.remove('over');
    const files = [...(e.dataTransfer?.files || [])].filter((f) => f.type.startsWith('image/'));
    if (files.length) handler(files);
  });
}

export function fileInput(handler, { multiple = false, accept = 'image/jpeg,image/png' } = {}) {
  const input = h('input', { type: 'file', accept, multiple, class: 'hidden' });
  input.addEventListener('change', () => {
    const files = [...input.files];
    input.value = '';
    if (files.length) handler(files);
  });
  return input;
}

/**
 * A photo source: drop zone, file picker and camera snapshot. ``onPhoto(blob, name)``.
 */
export function photoPicker(onPhoto, { label = 'Drop a photo here' } = {}) {
  const input = fileInput((files) => onPhoto(files[0], files[0].name));
  input.dataset.role = 'photo-input';
  const camera = h('div', { class: 'hidden' });
  const zone = h('div', { class: 'drop' },
    h('p', {}, h('strong', {}, label), ' — JPEG or PNG'),
    h('div', { class: 'row', style: 'justify-content:center' },
      h('button', { type: 'button', class: 'primary', onclick: () => input.click() }, 'Choose a photo'),
      h('button', { type: 'button', onclick: () => openCamera(camera, onPhoto) }, 'Take a snapshot'),
    ),
    input,
  );
  onDrop(zone, (files) => onPhoto(files[0], files[0].name));
  return h('div', {}, zone, camera);
}

async function openCamera(box, onPhoto) {
  if (!navigator.mediaDevices?.getUserMedia) return toast('This browser gives no camera here (it needs https or localhost).', true);
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 1280 } }, audio: false });
  } catch (err) {
    return toast(`No camera: ${errorText(err)}`, true);
  }
  const video = h('video', { autoplay: true, muted: true, playsinline: true });
  video.srcObject = stream;
  const stop = () => { stream.getTracks().forEach((t) => t.stop()); fill(box); box.classList.add('hidden'); };
  const snap = () => {
    const c = h('canvas', { width: video.videoWidth, height: video.videoHeight });
    c.getContext('2d').drawImage(video, 0, 0);
    c.toBlob((blob) => { stop(); onPhoto(blob, 'snapshot.jpg'); }, 'image/jpeg', 0.92);
  };
  fill(box, h('div', { class: 'stage', style: 'margin-top:.8rem' }, video),
    h('div', { class: 'row', style: 'margin-top:.5rem' },
      h('button', { type: 'button', class: 'primary', onclick: snap }, 'Snap'),
      h('button', { type: 'button', onclick: stop }, 'Cancel')));
  box.classList.remove('hidden');
}

/**
 * Editor of a flat metadata object: one row per key. Values that were not strings are shown
 * and read back as JSON; everything typed is kept as a string otherwise.
 */
export function kvEditor(metadata = {}) {
  const rows = h('div', { class: 'kv' });
  const wasJson = new Set();
  const addRow = (k = '', v = '') => {
    const key = h('input', { type: 'text', placeholder: 'field (e.g. name, phone)', value: k, 'aria-label': 'field' });
    const val = h('input', { type: 'text', placeholder: 'value', value: asText(v), 'aria-label': 'value' });
    if (typeof v !== 'string') wasJson.add(val);
    const del = h('button', { type: 'button', class: 'link', title: 'Remove this field', onclick: () => { key.remove(); val.remove(); del.remove(); } }, '✕');
    rows.append(key, val, del);
  };
  for (const [k, v] of Object.entries(metadata)) addRow(k, v);
  if (!Object.keys(metadata).length) addRow();
  const el = h('div', {}, rows, h('button', { type: 'button', class: 'link', onclick: () => addRow() }, '+ add a field'));
  el.read = () => {
    const out = {};
    const inputs = [...rows.querySelectorAll('input')];
    for (let i = 0; i < inputs.length; i += 2) {
      const k = inputs[i].value.trim();
      if (!k) continue;
      let v = inputs[i + 1].value;
      if (wasJson.has(inputs[i + 1])) {
        try { v = JSON.parse(v); } catch { /* keep the text */ }
      }
      out[k] = v;
    }
    return out;
  };
  return el;
}

/** The explanation picture of one candidate (the explain route), in a dialog. */
export function explain(cid, photo, itemId, { box, numbers } = {}) {
  const img = h('img', { class: 'explain hidden', alt: `Explanation of ${itemId}` });
  const status = loading('Drawing the keypoints and heat-maps…');
  const body = h('div', { dataset: { role: 'explanation' } },
    numbers ? h('p', { class: 'muted small' }, numbers) : null, status, img);
  const query = { item_id: itemId, box: box ? box.map((v) => Math.round(v)).join(',') : undefined };
  call('POST', `${catalogPath(cid)}/matches/explain`, { body: photo, type: photoType(photo), query })
    .then((r) => r.blob())
    .then((blob) => {
      img.src = URL.createObjectURL(blob);
      img.classList.remove('hidden');
      status.remove();
    })
    .catch((err) => status.replaceWith(errorBox(err)));
  return modal({ title: `Why ${itemId}?`, wide: true, body });
}

/** A <select> of the caller's catalogs (optionally of one kind), with ``selected`` chosen. */
export async function catalogSelect({ kind, selected, onchange } = {}) {
  const { catalogs } = await getJson('/v1/catalogs');
  const usable = catalogs.filter((c) => !kind || c.kind === kind);
  const sel = h('select', { 'aria-label': 'catalog', dataset: { role: 'catalog' } },
    usable.map((c) => h('option', { value: c.id, selected: c.id === selected }, `${c.name} · ${c.kind} · ${c.items} items`)));
  if (onchange) sel.addEventListener('change', () => onchange(sel.value));
  return { select: sel, catalogs: usable };
}
