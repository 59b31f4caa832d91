// Watches: be told when a lost dog turns up. Create a watch from a catalog, see its alerts as
// pairs of photos side by side with the score, open the explanation, mark an alert resolved
// (reunited / not the same). Below: the catalog's proposed new individuals (discovery): accept
// a group as a new item, split photos off it, or reject it.

import { call, catalogPath, getJson, postJson } from '../api.js';
import { asText, ago, fill, fmt, h } from '../dom.js';
import { catalogSelect, confirmDialog, errorBox, errorText, explain, kvEditor, loading, modal, thumb, toast } from '../ui.js';
import { follow } from '../jobs.js';

const RESOLUTIONS = [['reunited', 'Reunited'], ['not_same', 'Not the same']];

export async function render(root, { params }) {
  const { select, catalogs } = await catalogSelect({ selected: params.catalog });
  root.append(h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Watches'),
    h('p', { class: 'muted' }, 'A watch matches every photo added to a catalog against the lost ones, in the background, and alerts you (and a webhook) when one scores high enough. Below, the photos nobody recognised, grouped as proposed new individuals.'))));
  if (!catalogs.length) {
    root.append(h('div', { class: 'panel empty' }, 'No catalog yet. ', h('a', { href: '#/catalogs' }, 'Create one'), ' first.'));
    return null;
  }
  let live = true;
  const watchesBox = h('div', { dataset: { role: 'watches' } }, loading('Loading the watches…'));
  const alertsBox = h('div', { dataset: { role: 'alerts' } });
  const proposalsBox = h('div', { dataset: { role: 'proposals' } });

  // --- create a watch -----------------------------------------------------------------------
  const source = h('select', { 'aria-label': 'catalog to watch', dataset: { role: 'source-catalog' } },
    catalogs.map((c) => h('option', { value: c.id }, `${c.name} · ${c.kind}`)));
  const minScore = h('input', { type: 'number', min: 0, max: 1, step: 0.05, value: '', placeholder: 'default', dataset: { role: 'min-score' }, 'aria-label': 'minimum score', style: 'width:7rem' });
  const webhook = h('input', { type: 'url', placeholder: 'https://… (optional)', dataset: { role: 'webhook' }, 'aria-label': 'webhook URL', style: 'min-width:16rem' });
  const createBtn = h('button', { type: 'button', class: 'primary', dataset: { role: 'create-watch' } }, 'Create the watch');
  createBtn.addEventListener('click', async () => {
    const body = { watched_catalog: select.value, source_catalog: source.value };
    if (minScore.value !== '') body.min_score = Number(minScore.value);
    if (webhook.value.trim()) body.webhook_url = webhook.value.trim();
    createBtn.disabled = true;
    try {
      const w = await postJson('/v1/watches', { json: body });
      toast(`Watch ${w.id} created; the existing photos are being matched.`);
      if (w.webhook_url) {
        await modal({ title: 'The webhook’s secret (shown once)', body: h('div', {},
          h('p', {}, 'Each alert is POSTed with the header X-Sighting-Signature: sha256=HMAC-SHA256(body, secret).'),
          h('code', { dataset: { role: 'secret' } }, w.secret)) });
      }
      await loadWatches(w.id);
    } catch (err) {
      toast(errorText(err), true);
    } finally {
      createBtn.disabled = false;
    }
  });

  root.append(
    h('section', { class: 'panel' },
      h('h3', {}, 'New watch'),
      h('div', { class: 'row' },
        h('label', { class: 'field' }, 'Lost (watched) catalog', select),
        h('label', { class: 'field' }, 'Catalog to watch (found)', source),
        h('label', { class: 'field' }, 'Minimum score', minScore),
        h('label', { class: 'field' }, 'Webhook', webhook),
        createBtn)),
    h('section', { class: 'panel' }, h('h3', {}, 'Watches of this catalog'), watchesBox),
    alertsBox,
    h('section', { class: 'panel' },
      h('div', { class: 'row', style: 'justify-content:space-between' },
        h('h3', { style: 'margin:0' }, 'Proposed new individuals'),
        h('button', { type: 'button', dataset: { role: 'start-discovery' }, onclick: () => startDiscovery() }, 'Group the unrecognised photos')),
      h('p', { class: 'muted small' }, 'Sightings reviewed “none of them”, or unreviewed with a low best score, grouped by similarity and keypoints. ',
        h('kbd', {}, 'a'), ' accept the first group · ', h('kbd', {}, 'r'), ' reject it'),
      proposalsBox));

  select.addEventListener('change', () => { location.hash = `#/watches?catalog=${encodeURIComponent(select.value)}`; });

  // --- watches and alerts -------------------------------------------------------------------
  async function loadWatches(openId) {
    try {
      const { watches } = await getJson('/v1/watches');
      const mine = watches.filter((w) => w.watched_catalog === select.value || w.source_catalog === select.value);
      if (!mine.length) {
        fill(watchesBox, h('p', { class: 'muted', dataset: { role: 'no-watch' } }, 'No watch of this catalog yet.'));
        fill(alertsBox);
        return;
      }
      fill(watchesBox, h('table', { class: 'table' },
        h('thead', {}, h('tr', {}, ['Watch', 'Lost', 'Found', 'Min score', 'Webhook', 'Created', ''].map((t) => h('th', {}, t)))),
        h('tbody', {}, mine.map((w) => h('tr', { dataset: { role: 'watch', watch: w.id } },
          h('td', {}, h('code', {}, w.id)), h('td', {}, w.watched_catalog), h('td', {}, w.source_catalog),
          h('td', {}, fmt.score(w.min_score)), h('td', { class: 'small' }, w.webhook_url || '–'),
          h('td', {}, ago(new Date(w.created_at * 1000).toISOString())),
          h('td', {},
            h('button', { type: 'button', dataset: { role: 'show-alerts' }, onclick: () => loadAlerts(w) }, 'Alerts'),
            ' ',
            h('button', { type: 'button', dataset: { role: 'delete-watch' }, onclick: async () => {
              if (!(await confirmDialog('Delete this watch?', 'Its alerts go with it.'))) return;
              try { await call('DELETE', `/v1/watches/${encodeURIComponent(w.id)}`); toast('Watch deleted'); loadWatches(); } catch (err) { toast(errorText(err), true); }
            } }, 'Delete')))))));
      const first = mine.find((w) => w.id === openId) || mine[0];
      await loadAlerts(first);
    } catch (err) {
      fill(watchesBox, errorBox(err));
    }
  }

  async function loadAlerts(w) {
    fill(alertsBox, h('section', { class: 'panel' }, loading('Loading the alerts…')));
    try {
      const { alerts } = await getJson(`/v1/watches/${encodeURIComponent(w.id)}/alerts`);
      fill(alertsBox, h('section', { class: 'panel', dataset: { role: 'alert-list', watch: w.id } },
        h('div', { class: 'row', style: 'justify-content:space-between' },
          h('h3', { style: 'margin:0' }, `Alerts of watch ${w.id} (${alerts.length})`),
          h('button', { type: 'button', dataset: { role: 'refresh-alerts' }, onclick: () => loadAlerts(w) }, 'Refresh')),
        alerts.length
          ? h('div', {}, alerts.map((a) => alertRow(w, a, () => loadAlerts(w))))
          : h('p', { class: 'muted', dataset: { role: 'no-alert' } }, 'No alert yet: a match at or above the watch’s score makes one.')));
    } catch (err) {
      fill(alertsBox, h('section', { class: 'panel' }, errorBox(err)));
    }
  }

  // --- discovery proposals ------------------------------------------------------------------
  let proposals = [];
  async function loadProposals() {
    try {
      ({ proposals } = await getJson(`${catalogPath(select.value)}/discovery/proposals`, { query: { state: 'open' } }));
      if (!proposals.length) {
        fill(proposalsBox, h('p', { class: 'muted', dataset: { role: 'no-proposal' } }, 'No open proposal. Group the unrecognised photos to make some.'));
        return;
      }
      fill(proposalsBox, proposals.map((p) => proposalCard(select.value, p, loadProposals)));
    } catch (err) {
      fill(proposalsBox, errorBox(err));
    }
  }

  async function startDiscovery() {
    try {
      const job = await postJson(`${catalogPath(select.value)}/discovery`, { json: {} });
      const status = h('p', { class: 'small', dataset: { role: 'discovery-job' } }, 'Queued…');
      fill(proposalsBox, status);
      const done = await follow(job.id, (j) => { status.textContent = `${j.state} · ${j.message || ''} ${j.total ? `${j.done}/${j.total}` : ''}`; }, () => live);
      if (done && done.state === 'failed') { fill(proposalsBox, h('div', { class: 'error' }, done.message)); return; }
      if (done) { toast(`${done.result.groups} groups proposed from ${done.result.photos} photos`); await loadProposals(); }
    } catch (err) {
      toast(errorText(err), true);
    }
  }

  const onKey = (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || e.repeat || document.querySelector('dialog[open]')) return;
    const t = e.target;
    if (t instanceof HTMLElement && (t.isContentEditable || ['INPUT', 'SELECT', 'TEXTAREA'].includes(t.tagName))) return;
    const first = proposalsBox.querySelector('[data-role="proposal"]');
    if (!first) return;
    if (e.key === 'a') first.querySelector('[data-role="accept"]').click();
    else if (e.key === 'r') first.querySelector('[data-role="reject"]').click();
    else return;
    e.preventDefault();
  };
  document.addEventListener('keydown', onKey);

  await Promise.all([loadWatches(), loadProposals()]);
  return () => { live = false; document.removeEventListener('keydown', onKey); };
}

function alertRow(w, a, reload) {
  const numbers = `score ${fmt.score(a.score)} · ${a.verified ? 'verified' : 'not verified'} · similarity ${Number(a.similarity).toFixed(3)} · ${a.inliers} inliers`;
  const why = async () => {
    try {
      const photo = await (await call('GET', a.source_image_url)).blob();
      await explain(a.watched.catalog_id, photo, a.watched.item_id, { numbers });
    } catch (err) {
      toast(errorText(err), true);
    }
  };
  const resolve = async (resolution) => {
    try {
      await postJson(`/v1/watches/${encodeURIComponent(w.id)}/alerts/${encodeURIComponent(a.id)}/resolve`, { json: { resolution } });
      toast(`Marked ${resolution.replace('_', ' ')}`);
      reload();
    } catch (err) {
      toast(errorText(err), true);
    }
  };
  return h('div', { class: 'alert-row', dataset: { role: 'alert', alert: a.id, resolution: a.resolution || '' } },
    h('div', { class: 'watch-pair' },
      h('figure', {}, thumb(a.watched.catalog_id, a.watched.item_id, a.watched.image_id, `lost ${a.watched.item_id}`),
        h('figcaption', { class: 'small' }, `lost: ${asText(a.watched.item_id)}`)),
      h('figure', {}, thumb(a.source.catalog_id, a.source.item_id, a.source.image_id, `found ${a.source.item_id}`),
        h('figcaption', { class: 'small' }, `found: ${asText(a.source.item_id)}`)),
      h('div', {},
        h('div', { class: 'row', style: 'gap:.4rem' }, h('span', { class: 'score', dataset: { role: 'alert-score' } }, fmt.score(a.score)),
          a.verified ? h('span', { class: 'badge ok' }, 'verified') : h('span', { class: 'badge' }, 'not verified'),
          a.resolution ? h('span', { class: 'badge', dataset: { role: 'resolution' } }, a.resolution.replace('_', ' ')) : null),
        h('p', { class: 'muted small' }, `${numbers} · ${a.created} · webhook ${a.delivery?.status || '–'}`),
        h('div', { class: 'row' },
          h('button', { type: 'button', dataset: { role: 'explain' }, onclick: why }, 'Why?'),
          RESOLUTIONS.map(([v, t]) => h('button', { type: 'button', class: v === 'reunited' ? 'primary' : '', dataset: { role: `resolve-${v}` }, disabled: a.resolution === v, onclick: () => resolve(v) }, t))))));
}

function proposalCard(cid, p, reload) {
  const base = `${catalogPath(cid)}/discovery/proposals/${encodeURIComponent(p.id)}`;
  const picked = new Set();
  const photos = p.members.map((m) => {
    const img = h('img', { alt: m.ref, loading: 'lazy' });
    call('GET', m.crop_url).then((r) => r.blob()).then((b) => { img.src = URL.createObjectURL(b); }, () => img.classList.add('broken'));
    return h('label', { class: 'member', title: `${m.source} ${m.ref}${m.time ? ` · ${m.time}` : ''}`, dataset: { role: 'member', ref: m.ref } },
      h('div', { class: 'thumb' }, img),
      h('span', { class: 'small' }, h('input', { type: 'checkbox', dataset: { role: 'pick' }, onchange: (e) => (e.target.checked ? picked.add(m.ref) : picked.delete(m.ref)) }), ' split off'));
  });
  const act = async (what, fn) => {
    try { await fn(); toast(what); reload(); } catch (err) { toast(errorText(err), true); }
  };
  const accept = async () => {
    const id = h('input', { type: 'text', placeholder: 'leave empty for an id made by the service', dataset: { role: 'accept-item-id' }, 'aria-label': 'new item id', style: 'width:100%' });
    const meta = kvEditor({});
    let body = null;
    const ok = () => { body = { metadata: meta.read() }; if (id.value.trim()) body.item_id = id.value.trim(); id.closest('dialog').close(); };
    id.addEventListener('keydown', (e) => { if (e.key === 'Enter') { e.preventDefault(); ok(); } });
    const shown = modal({
      title: `A new item of these ${p.members.length} photos`,
      body: h('div', {}, h('label', { class: 'field', style: 'display:block;margin-bottom:.8rem' }, 'Item id', id), h('p', { class: 'muted small' }, 'Metadata (optional)'), meta),
      foot: (close) => [h('button', { type: 'button', onclick: close }, 'Cancel'),
        h('button', { type: 'button', class: 'primary', dataset: { role: 'accept-save' }, onclick: ok }, 'Create the item')],
    });
    id.focus();
    await shown;
    if (body) await act('Accepted: a new item', async () => { const a = await postJson(`${base}/accept`, { json: body }); toast(`Item ${a.item_id} created with ${a.images} photos`); });
  };
  return h('div', { class: 'panel', dataset: { role: 'proposal', proposal: p.id, size: p.members.length } },
    h('div', { class: 'row', style: 'justify-content:space-between' },
      h('strong', {}, `${p.members.length} photos · weakest link ${fmt.score(p.score)}`),
      h('span', { class: 'muted small' }, p.split_from ? `split from ${p.split_from}` : `job ${p.job_id}`)),
    h('div', { class: 'proposal-photos' }, photos),
    h('div', { class: 'row', style: 'margin-top:.5rem' },
      h('button', { type: 'button', class: 'primary', dataset: { role: 'accept' }, onclick: accept }, 'Accept as a new item'),
      h('button', { type: 'button', dataset: { role: 'split' }, onclick: () => act('Split off', async () => {
        if (!picked.size) throw new Error('Tick the photos to split off first.');
        await postJson(`${base}/split`, { json: { members: [...picked] } });
      }) }, 'Split the ticked photos off'),
      h('button', { type: 'button', dataset: { role: 'reject' }, onclick: () => act('Rejected', () => postJson(`${base}/reject`, { json: {} })) }, 'Reject')));
}
