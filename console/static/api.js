// The public API, as any client calls it: same routes, same X-API-Key checks.

const KEY = 'sighting.apiKey';

export const getKey = () => sessionStorage.getItem(KEY) || '';

/** Keep the key for this tab only (sessionStorage); an empty key forgets it. */
export function setKey(key) {
  if (key) sessionStorage.setItem(KEY, key);
  else sessionStorage.removeItem(KEY);
  window.dispatchEvent(new CustomEvent('sighting:key'));
}

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }
}

function headers(extra = {}) {
  const h = new Headers(extra);
  const key = getKey();
  if (key) h.set('X-API-Key', key);
  return h;
}

async function errorOf(response) {
  let e = {};
  try {
    e = (await response.json()).error || {};
  } catch {
    /* not JSON */
  }
  if (response.status === 401) window.dispatchEvent(new CustomEvent('sighting:unauthorized'));
  return new ApiError(response.status, e.code || `http_${response.status}`, e.message || response.statusText, e.details);
}

/** Query string of the defined values of ``query``. */
function url(path, query) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query || {})) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

/**
 * One API call. ``json``: a body sent as JSON; ``body`` + ``type``: a raw body (a photo).
 * Resolves to the Response; rejects with ApiError on a non-2xx answer.
 */
export async function call(method, path, { json, body, type, query, header, signal } = {}) {
  const init = { method, headers: headers(header), cache: 'no-store', signal };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers.set('Content-Type', 'application/json');
  } else if (body !== undefined) {
    init.body = body;
    if (type) init.headers.set('Content-Type', type);
  }
  const response = await fetch(url(path, query), init);
  if (!response.ok) throw await errorOf(response);
  return response;
}

export const getJson = async (path, opts) => (await call('GET', path, opts)).json();
export const postJson = async (path, opts) => (await call('POST', path, opts)).json();

/** The content type to send a photo with (the API takes JPEG and PNG). */
export const photoType = (blob) => blob.type || 'image/jpeg';

/**
 * A multipart upload with progress (XMLHttpRequest: fetch has no upload progress).
 * ``onProgress(fraction)``; resolves to the JSON answer, rejects with ApiError.
 */
export function upload(path, form, onProgress, query) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', url(path, query));
    const key = getKey();
    if (key) xhr.setRequestHeader('X-API-Key', key);
    xhr.responseType = 'json';
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress && onProgress(e.loaded / e.total);
    xhr.upload.onload = () => onProgress && onProgress(1);
    xhr.onerror = () => reject(new ApiError(0, 'network', 'the service did not answer'));
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) return resolve(xhr.response || {});
      const e = (xhr.response && xhr.response.error) || {};
      if (xhr.status === 401) window.dispatchEvent(new CustomEvent('sighting:unauthorized'));
      reject(new ApiError(xhr.status, e.code || `http_${xhr.status}`, e.message || xhr.statusText, e.details));
    };
    xhr.send(form);
  });
}

export const catalogPath = (cid) => `/v1/catalogs/${encodeURIComponent(cid)}`;
export const itemPath = (cid, item) => `${catalogPath(cid)}/items/${encodeURIComponent(item)}`;

// Reference images need the key header, so <img> gets them as blob: URLs (a few at a time).
const images = new Map();
let running = 0;
const waiting = [];

async function slot(fn) {
  if (running >= 6) await new Promise((r) => waiting.push(r));
  running += 1;
  try {
    return await fn();
  } finally {
    running -= 1;
    const next = waiting.shift();
    if (next) next();
  }
}

/** A blob: URL of one stored reference image (cached for the page's life). */
export function imageUrl(cid, item, imageId) {
  const k = `${cid}/${imageId}`;
  if (!images.has(k)) {
    const p = slot(async () => URL.createObjectURL(await (await call('GET', `${itemPath(cid, item)}/images/${encodeURIComponent(imageId)}`)).blob()));
    p.catch(() => images.delete(k));
    images.set(k, p);
  }
  return images.get(k);
}

/** A blob: URL of any GET answer (a job's picture), fetched with the key, a few at a time
 * and cached for the page's life. */
const blobs = new Map();
export function blobUrl(path) {
  if (!blobs.has(path)) {
    const p = slot(async () => URL.createObjectURL(await (await call('GET', path)).blob()));
    p.catch(() => blobs.delete(path));
    blobs.set(path, p);
  }
  return blobs.get(path);
}

/** Save a GET answer (a CSV, JSON lines) as a file named ``filename`` (the key goes in the
 * header, so a plain link cannot do it). Resolves to the number of bytes saved. */
export async function download(path, filename) {
  const blob = await (await call('GET', path)).blob();
  const href = URL.createObjectURL(blob);
  const a = Object.assign(document.createElement('a'), { href, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 10000);
  return blob.size;
}

export const jobPath = (id) => `/v1/jobs/${encodeURIComponent(id)}`;
/** A job file's path; ``name`` may be one folder deep (``photos/x.jpg``, ``sheets/c_0.jpg``). */
export const jobFilePath = (id, name) => `${jobPath(id)}/files/${name.split('/').map(encodeURIComponent).join('/')}`;

/** The OpenAPI document's paths (to know which optional pages the service has). */
let spec = null;
export async function apiPaths() {
  if (!spec) spec = fetch('/openapi.json', { cache: 'no-store' }).then((r) => (r.ok ? r.json() : { paths: {} })).catch(() => ({ paths: {} }));
  return Object.keys((await spec).paths || {});
}
