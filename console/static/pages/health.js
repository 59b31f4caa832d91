// Health: readiness, workers, the models of each catalog kind (and the runtime and precision each
// stage runs), and where the API is described.

import { call } from '../api.js';
import { fill, h } from '../dom.js';
import { errorBox, loading } from '../ui.js';

export async function render(root) {
  const body = h('div', {}, loading('Asking the service…'));
  root.append(h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Health'),
    h('p', { class: 'muted' }, 'Is the service ready, what it runs, and where its API is described.')),
  h('button', { type: 'button', onclick: () => show(body) }, 'Refresh')), body);
  await show(body);
}

/** Which runtime and precision a stage runs (GET /v1/info `runtimes`), and why not the one asked for. */
export function runsOn(runtimes, stage) {
  const r = runtimes && runtimes[stage];
  if (!r) return null;
  const why = r.reason ? ` (asked ${r.requested}: ${r.reason})` : '';
  return h('div', { class: 'small muted', dataset: { role: 'runtime', stage } }, `${r.runtime} · ${r.precision}${why}`);
}

async function show(body) {
  fill(body, loading('Asking the service…'));
  let ready;
  let readyStatus;
  let worker;
  try {
    const r = await fetch('/readyz', { cache: 'no-store' });
    readyStatus = r.status;
    worker = r.headers.get('X-Sighting-Worker');
    ready = await r.json();
  } catch (err) {
    fill(body, errorBox(err));
    return;
  }
  let info = null;
  let infoError = null;
  try {
    info = await (await call('GET', '/v1/info')).json();
  } catch (err) {
    infoError = err;
  }
  const ok = readyStatus === 200;
  const checks = Object.entries(ready.checks || {});
  const tile = (k, v, extra, role) => h('div', { class: 'tile', dataset: { role } }, h('div', { class: 'k' }, k), h('div', { class: 'v' }, v), extra);
  fill(body,
    h('div', { class: 'tiles' },
      tile('Readiness', h('span', { class: ok ? 'badge ok' : 'badge bad', style: 'font-size:1rem' }, ok ? 'ready' : 'not ready'),
        h('div', { class: 'small muted' }, checks.map(([k, v]) => h('div', {}, `${k}: ${v === true ? 'ok' : v === false ? 'failing' : v}`))), 'readiness'),
      tile('Workers', info ? String(info.workers) : '–',
        h('div', { class: 'small muted' }, info ? `${info.worker_threads} threads each · this answer from worker ${worker}` : `answered by worker ${worker}`), 'workers'),
      tile('Storage', info ? info.storage : '–', h('div', { class: 'small muted' }, info ? (info.auth ? `API keys required${info.admin ? ' · admin key' : ''}` : 'open: no API key configured') : ''), 'storage'),
      tile('Limits', info ? `top ${info.limits.max_top_k}` : '–', h('div', { class: 'small muted' }, info ? `bodies up to ${Math.round(info.limits.max_body_bytes / 1048576)} MB` : ''), 'limits')),
    infoError ? errorBox(infoError) : null,
    info ? h('section', { class: 'panel' }, h('h2', {}, 'Models of each catalog kind'),
      h('table', { dataset: { role: 'models' } },
        h('thead', {}, h('tr', {}, h('th', {}, 'Kind'), h('th', {}, 'Detector'), h('th', {}, 'Embedder'), h('th', {}, 'Verifier'), h('th', { class: 'num' }, 'Verified at score'))),
        h('tbody', {}, Object.entries(info.kinds).map(([kind, m]) => h('tr', {},
          h('td', {}, h('span', { class: 'badge kind' }, kind)), h('td', { class: 'mono' }, m.detector, runsOn(m.runtimes, 'detector')),
          h('td', { class: 'mono' }, m.embedder, runsOn(m.runtimes, 'embedder')),
          h('td', { class: 'mono' }, m.verifier || 'none'), h('td', { class: 'num' }, `≥ ${m.threshold.toFixed(2)}`)))))) : null,
    h('section', { class: 'panel' }, h('h2', {}, 'The API'),
      h('p', {}, 'Everything this console does goes through the public API, with the same key checks. ',
        h('a', { href: '/docs', target: '_blank', rel: 'noopener' }, 'Open the API document'), ' · ',
        h('a', { href: '/openapi.json', target: '_blank', rel: 'noopener' }, 'openapi.json'), ' · ',
        h('a', { href: '/metrics', target: '_blank', rel: 'noopener' }, 'Prometheus metrics'))));
}

