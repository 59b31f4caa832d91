// Long jobs (camera-trap batches, analytics, whole videos): follow one to its end, remember the
// ones this browser started (localStorage: ids and a few words, never results), read its files.

import { getJson, jobFilePath, jobPath, call } from './api.js';
import { ago, fill, h } from './dom.js';
import { errorText } from './ui.js';

const KEY = 'sighting.jobs';

/** The jobs this browser started, newest first: {id, kind, title, catalog, at, ...extra}. */
export function recentJobs(kind) {
  let all = [];
  try { all = JSON.parse(localStorage.getItem(KEY) || '[]'); } catch { all = []; }
  return all.filter((j) => !kind || j.kind === kind);
}

export function rememberJob(job) {
  const all = recentJobs().filter((j) => j.id !== job.id);
  all.unshift({ at: new Date().toISOString(), ...job });
  localStorage.setItem(KEY, JSON.stringify(all.slice(0, 50)));
}

export function forgetJob(id) {
  localStorage.setItem(KEY, JSON.stringify(recentJobs().filter((j) => j.id !== id)));
}

/**
 * Poll a job until it is done or failed; ``onUpdate(job)`` after each answer. Resolves to the
 * last answer. ``isLive()`` false stops polling (the page was left): resolves to null.
 */
export async function follow(id, onUpdate, isLive = () => true, everyMs = 1000) {
  for (;;) {
    if (!isLive()) return null;
    const job = await getJson(jobPath(id));
    onUpdate(job);
    if (job.state === 'done' || job.state === 'failed') return job;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** "12 of 40 photos" with a bar: the job's state in words. ``unit`` names what is counted. */
export function jobStatus(unit = '') {
  const bar = h('progress', { max: 1, value: 0 });
  const text = h('span', { class: 'small', dataset: { role: 'job-status' } }, 'queued');
  const el = h('div', { class: 'job-status' }, bar, text);
  el.update = (job) => {
    const { done, total } = job.progress || {};
    el.dataset.state = job.state;
    if (job.state === 'done') {
      bar.value = 1;
      bar.className = 'done';
      text.textContent = `done ${ago(job.finished_at)}${total ? ` · ${total}${unit ? ` ${unit}` : ''}` : ''}`;
    } else if (job.state === 'failed') {
      bar.value = 1;
      bar.className = 'failed';
      text.textContent = `failed: ${job.message || 'see the service log'}`;
    } else {
      bar.value = total ? done / total : 0;
      if (!total) bar.removeAttribute('value'); // indeterminate while models load
      text.textContent = job.state === 'queued' ? 'queued: waiting for a job worker' : (job.message || `${done} of ${total}`);
    }
  };
  el.fail = (err) => { bar.value = 1; bar.className = 'failed'; text.textContent = errorText(err); };
  return el;
}

/** A job file as text (CSV, JSON lines, JSON). */
export const fileText = async (id, name) => (await call('GET', jobFilePath(id, name))).text();

/** JSON lines as objects (blank lines skipped). */
export const jsonLines = (text) => text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));

/**
 * A CSV text as rows of objects (RFC 4180: quoted fields, doubled quotes, newlines in quotes).
 */
export function parseCsv(text) {
  const rows = [];
  let row = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i += 1) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i += 1; } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') { row.push(field); field = ''; } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i += 1;
      row.push(field); rows.push(row); row = []; field = '';
    } else field += c;
  }
  if (field || row.length) { row.push(field); rows.push(row); }
  const [head, ...body] = rows.filter((r) => r.length > 1 || r[0] !== '');
  return (body || []).map((r) => Object.fromEntries((head || []).map((k, i) => [k, r[i] ?? ''])));
}

/** A list of the jobs of ``kind`` this browser started, each a link to ``href(job)``. */
export function recentList(kind, href, empty) {
  const jobs = recentJobs(kind);
  if (!jobs.length) return h('p', { class: 'muted small' }, empty);
  const list = h('ul', { class: 'recent', dataset: { role: 'recent-jobs' } });
  fill(list, jobs.slice(0, 12).map((j) => h('li', {},
    h('a', { href: href(j) }, j.title || j.id), ' ', h('span', { class: 'muted small' }, `${ago(j.at)} · job ${j.id}`))));
  return list;
}
