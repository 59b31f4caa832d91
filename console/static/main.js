// The console's shell: navigation, the API key, and a hash router (#/catalogs, #/try, ...).

import { apiPaths, getKey, setKey } from './api.js';
import { fill, h } from './dom.js';
import { clearToasts, modal } from './ui.js';
import * as catalog from './pages/catalog.js';
import * as catalogs from './pages/catalogs.js';
import * as health from './pages/health.js';
import * as live from './pages/live.js';
import * as lost from './pages/lost.js';
import * as tryPhoto from './pages/try.js';
import * as traps from './pages/traps.js';
import * as analytics from './pages/analytics.js';
import * as videos from './pages/videos.js';
import * as review from './pages/review.js';
import * as watches from './pages/watches.js';

const PAGES = [
  { id: 'catalogs', title: 'Catalogs', pattern: /^catalogs$/, page: catalogs },
  { id: 'catalog', nav: 'catalogs', pattern: /^catalogs\/([^/]+)$/, page: catalog },
  { id: 'try', title: 'Try a photo', pattern: /^try$/, page: tryPhoto },
  { id: 'lost', title: 'Lost-pet search', pattern: /^lost$/, page: lost },
  { id: 'live', title: 'Live', pattern: /^live$/, page: live },
  { id: 'videos', title: 'Whole video', pattern: /^videos$/, page: videos },
  { id: 'review', title: 'Review', pattern: /^review$/, page: review, optional: true },
  { id: 'watches', title: 'Watches', pattern: /^watches$/, page: watches, optional: true },
  { id: 'health', title: 'Health', pattern: /^health$/, page: health },
  { id: 'traps', title: 'Camera traps', pattern: /^traps$/, page: traps },
  { id: 'analytics', title: 'Analytics', pattern: /^analytics$/, page: analytics },
];

const view = document.getElementById('view');
let cleanup = null;
let available = {}; // optional page id -> true when the service has its routes

async function renderNav(active) {
  const nav = document.getElementById('nav');
  const links = [];
  for (const p of PAGES.filter((x) => x.title)) {
    if (p.id === 'traps') links.push(h('hr'));
    const soon = p.optional && !available[p.id] ? h('span', { class: 'soon' }, 'coming') : null;
    links.push(h('a', { href: `#/${p.id}`, class: p.id === active ? 'active' : '', dataset: { page: p.id } }, p.title, soon));
  }
  fill(nav, links);
}

function renderKeyButton() {
  const b = document.getElementById('key-button');
  b.textContent = getKey() ? 'API key set' : 'API key';
  b.classList.toggle('set', Boolean(getKey()));
}

let asking = false;
export async function askKey(reason) {
  if (asking) return;
  asking = true;
  const input = h('input', { type: 'password', autocomplete: 'off', placeholder: 'X-API-Key', style: 'width:100%', dataset: { role: 'key-input' } });
  const save = () => { setKey(input.value.trim()); input.closest('dialog').close(); };
  input.addEventListener('keydown', (e) => e.key === 'Enter' && save());
  await modal({
    title: 'API key',
    body: h('div', {},
      h('p', {}, reason || 'The key is kept in this tab only (session storage) and sent as the X-API-Key header.'),
      input),
    foot: (close) => [
      h('button', { type: 'button', onclick: () => { setKey(''); close(); } }, 'Forget the key'),
      h('button', { type: 'button', class: 'primary', dataset: { role: 'key-save' }, onclick: save }, 'Save'),
    ],
  });
  asking = false;
}

async function route() {
  if (cleanup) {
    try { cleanup(); } catch { /* the old page is gone */ }
    cleanup = null;
  }
  clearToasts();
  document.body.classList.remove('nav-open');
  const [path, qs] = (location.hash.replace(/^#\/?/, '') || 'catalogs').split('?');
  const found = PAGES.map((p) => [p, path.match(p.pattern)]).find(([, m]) => m);
  if (!found) { location.hash = '#/catalogs'; return; }
  const [page, match] = found;
  await renderNav(page.nav || page.id);
  document.title = `${page.title || 'Catalog'} · Sighting`;
  fill(view);
  view.dataset.page = page.id;
  const params = Object.fromEntries(new URLSearchParams(qs || ''));
  try {
    cleanup = (await page.page.render(view, { args: match.slice(1).map(decodeURIComponent), params, page, available })) || null;
  } catch (err) {
    view.append(h('div', { class: 'error' }, String(err.message || err)));
  }
}

async function discover() {
  const paths = await apiPaths();
  available = {
    traps: paths.some((p) => /trap|camera-?trap|batches/i.test(p)),
    analytics: paths.some((p) => /analytics|quality|clusters/i.test(p)),
    review: paths.some((p) => /\/sightings/.test(p)),
    watches: paths.some((p) => /^\/v1\/watches/.test(p)),
  };
}

window.addEventListener('hashchange', route);
window.addEventListener('sighting:key', () => { renderKeyButton(); route(); });
window.addEventListener('sighting:unauthorized', () => askKey(getKey()
  ? 'The service did not accept this key. Type another one.'
  : 'This service needs an API key. It is kept in this tab only (session storage).'));
document.getElementById('key-button').addEventListener('click', () => askKey());
renderKeyButton();
discover().finally(route);

// A narrow window: the sidebar is a top bar whose menu opens on demand.
document.getElementById('nav-toggle').addEventListener('click', (e) => {
  const open = document.body.classList.toggle('nav-open');
  e.currentTarget.setAttribute('aria-expanded', String(open));
});
