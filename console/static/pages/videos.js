// Whole videos: a recorded file sent to the videos route, every frame (or every n-th) matched
// with tracking; then a timeline per item (first and last seen, frames, verified) and the
// video annotated here: its boxes drawn over the user's own copy as it plays; and the service's
// own annotated file (annotate=true: a job draws annotated.webm), shown and downloadable.

import { blobUrl, call, catalogPath, download, jobFilePath } from '../api.js';
import { fill, fmt, h } from '../dom.js';
import { drawBoxes } from '../draw.js';
import { follow } from '../jobs.js';
import { catalogSelect, errorBox, errorText, fileInput } from '../ui.js';

let abort = null;

export async function render(root, { params }) {
  root.append(h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Whole video'),
    h('p', { class: 'muted' }, 'A recorded file, every frame: unlike Live, which drops the frames that arrive while the service is busy. When it is done, a timeline per item and the video with its boxes.'))));
  let select;
  try {
    ({ select } = await catalogSelect({ selected: params.catalog }));
  } catch (err) {
    root.append(errorBox(err));
    return undefined;
  }
  const stride = h('input', { type: 'number', min: 1, max: 1000, value: 1, style: 'width:6em', dataset: { role: 'stride' } });
  const out = h('div', { dataset: { role: 'video-result' } });
  const input = fileInput((files) => processVideo(select.value, files[0], Number(stride.value) || 1, out), { accept: 'video/*' });
  input.dataset.role = 'whole-video-input';
  root.append(h('section', { class: 'panel' }, h('div', { class: 'row' },
    h('label', { class: 'field' }, 'Catalog', select),
    h('label', { class: 'field' }, 'Every n-th frame', stride),
    h('button', { type: 'button', class: 'primary', style: 'align-self:flex-end', onclick: () => input.click() }, 'Choose a video file'), input),
  h('p', { class: 'muted small' }, 'The file is sent whole (up to the service’s body limit); larger recordings go in the store and through the API (a JSON body naming videos/…).')), out);
  return () => { if (abort) abort.abort(); abort = null; };
}

/** Items of the answer's lines: item -> {first, last, frames, verified, tracks}. */
export function timelines(lines) {
  const items = new Map();
  for (const l of lines) {
    if (!l.item) continue;
    const t = items.get(l.item) || { item: l.item, first: l.time, last: l.time, frames: new Set(), verified: false, tracks: new Set(), best: 0 };
    t.first = Math.min(t.first, l.time);
    t.last = Math.max(t.last, l.time);
    t.frames.add(l.frame);
    t.verified = t.verified || Boolean(l.verified);
    if (l.track !== null && l.track !== undefined) t.tracks.add(l.track);
    t.best = Math.max(t.best, l.score || 0);
    items.set(l.item, t);
  }
  return [...items.values()].sort((a, b) => a.first - b.first);
}

async function processVideo(cid, file, stride, out) {
  if (abort) abort.abort();
  abort = new AbortController();
  const url = URL.createObjectURL(file);
  const video = h('video', { class: 'result', src: url, controls: true, muted: true, playsinline: true, preload: 'metadata' });
  const bar = h('progress', { max: 1 });
  const status = h('span', { class: 'small', dataset: { role: 'video-status' } }, 'sending the file…');
  fill(out, h('section', { class: 'panel' }, h('div', { class: 'job-status' }, bar, status)));
  let expected = 0;
  video.addEventListener('loadedmetadata', () => { expected = video.duration; });
  const lines = [];
  let summary = null;
  try {
    const response = await call('POST', `${catalogPath(cid)}/videos`, { body: file, type: file.type || 'video/mp4', query: { stride, annotate: 'true' }, signal: abort.signal });
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let rest = '';
    let lastTime = 0;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      rest += value;
      const parts = rest.split('\n');
      rest = parts.pop();
      for (const p of parts) {
        if (!p.trim()) continue;
        const l = JSON.parse(p);
        if (l.summary) summary = l.summary;
        else { lines.push(l); lastTime = l.time; }
      }
      if (expected) bar.value = Math.min(1, lastTime / expected);
      status.textContent = `${lines.length} detections so far · ${lastTime.toFixed(1)} s${expected ? ` of ${expected.toFixed(1)} s` : ''}`;
    }
  } catch (err) {
    if (err.name === 'AbortError') return;
    bar.value = 1;
    bar.className = 'failed';
    status.textContent = `refused: ${errorText(err)}`;
    return;
  }
  bar.value = 1;
  bar.className = 'done';
  status.textContent = summary
    ? `done: ${summary.frames} frames at ${fmt.score(summary.fps)} frames/s on the service · ${lines.length} detections`
    : `done: ${lines.length} detections`;
  status.dataset.frames = summary ? summary.frames : '';
  showResult(out, video, lines, summary);
  if (summary?.annotation_job) {
    const panel = annotatedPanel(summary.annotation_job, file.name);
    out.append(panel.el);
    panel.start(); // once on the page: following stops when the page is left
  }
}

/** The service's own annotated video (the job ``annotation_job`` draws it): shown when done,
 * with a download link. ``start()`` follows the job once ``el`` is on the page. */
function annotatedPanel(jobId, name) {
  const status = h('span', { class: 'small', dataset: { role: 'annotated-status' } }, 'the service is drawing it…');
  const body = h('div', {}, status);
  const path = jobFilePath(jobId, 'annotated.webm');
  const start = () => follow(jobId, (job) => { if (job.progress?.done) status.textContent = `the service is drawing it: ${job.progress.done} frames`; }, () => body.isConnected)
    .then(async (job) => {
      if (!job) return;
      if (job.state !== 'done') {
        status.textContent = `not drawn: ${job.message || job.state}`;
        return;
      }
      const src = await blobUrl(path);
      const saveAs = `${name.replace(/\.[^.]*$/, '')}-annotated.webm`;
      fill(body,
        h('video', { class: 'result', src, controls: true, muted: true, playsinline: true, preload: 'metadata', dataset: { role: 'annotated-video', frames: job.result?.frames ?? '' } }),
        h('div', { class: 'row' },
          h('button', { type: 'button', dataset: { role: 'download-annotated' }, onclick: () => download(path, saveAs).catch((err) => fill(status, errorText(err))) }, `Download ${saveAs}`),
          h('span', { class: 'muted small' }, `${job.result?.frames ?? '?'} frames, WebM (VP8), drawn by the service: boxes, item, score; green = verified`)),
        status);
      status.textContent = '';
    })
    .catch((err) => { status.textContent = `not drawn: ${errorText(err)}`; });
  return { el: h('section', { class: 'panel' }, h('h2', {}, 'The annotated video file'), body), start };
}

function showResult(out, video, lines, summary) {
  const items = timelines(lines);
  const end = Math.max(0.001, video.duration || 0, ...lines.map((l) => l.time));
  const rows = items.map((t) => h('tr', { dataset: { item: t.item } },
    h('td', {}, h('button', { type: 'button', class: 'link', title: 'Play from here', onclick: () => { video.currentTime = t.first; video.play().catch(() => {}); } }, t.item)),
    h('td', { class: 'num' }, `${t.first.toFixed(1)} s`),
    h('td', { class: 'num' }, `${t.last.toFixed(1)} s`),
    h('td', { class: 'num', dataset: { role: 'frames' } }, t.frames.size),
    h('td', {}, t.verified ? h('span', { class: 'badge ok' }, 'verified') : h('span', { class: 'badge' }, 'candidate')),
    h('td', { style: 'width:40%' }, h('div', { class: 'timeline' },
      h('span', { class: t.verified ? 'span ok' : 'span', style: `left:${(100 * t.first) / end}%;width:${(100 * (t.last - t.first)) / end}%` })))));
  // the annotated video: the boxes of the frame on screen, drawn over the user's own copy
  const overlay = h('canvas', { class: 'overlay' });
  const byFrame = new Map();
  for (const l of lines) {
    if (!byFrame.has(l.frame)) byFrame.set(l.frame, []);
    byFrame.get(l.frame).push(l);
  }
  const fps = summary?.video_fps || (lines.length > 1 ? (lines.at(-1).frame - lines[0].frame) / Math.max(1e-3, lines.at(-1).time - lines[0].time) : 30);
  const frames = [...byFrame.keys()].sort((a, b) => a - b);
  const paint = () => {
    if (!video.videoWidth) return;
    overlay.width = video.clientWidth;
    overlay.height = video.clientHeight;
    overlay.style.left = `${video.offsetLeft}px`;
    overlay.style.top = `${video.offsetTop}px`;
    const ctx = overlay.getContext('2d');
    ctx.clearRect(0, 0, overlay.width, overlay.height);
    const want = Math.round(video.currentTime * fps);
    let f = null;
    for (const x of frames) { if (x <= want) f = x; else break; }
    if (f === null || want - f > 2 * (frames[1] - frames[0] || 1)) return;
    const dets = byFrame.get(f).map((l) => ({ box: l.box, class: l.class, matches: l.item ? [{ item_id: l.item, score: l.score, verified: l.verified }] : [] }));
    drawBoxes(ctx, dets, { scale: overlay.width / video.videoWidth, label: (d) => (d.matches[0] ? `${d.matches[0].item_id} ${fmt.score(d.matches[0].score)}` : d.class) });
  };
  let raf = 0;
  const loop = () => { paint(); if (!video.paused) raf = requestAnimationFrame(loop); };
  video.addEventListener('play', () => { cancelAnimationFrame(raf); loop(); });
  video.addEventListener('seeked', paint);
  video.addEventListener('loadeddata', paint);
  const cannot = h('p', { class: 'muted small hidden' }, 'This browser cannot play this file’s codec; the timeline above is complete.');
  video.addEventListener('error', () => cannot.classList.remove('hidden'));
  out.append(
    h('section', { class: 'panel', dataset: { role: 'timeline' } }, h('h2', {}, `Items seen (${items.length})`),
      items.length
        ? h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Item'), h('th', { class: 'num' }, 'First seen'), h('th', { class: 'num' }, 'Last seen'),
          h('th', { class: 'num' }, 'Frames'), h('th', {}, 'Verified'), h('th', {}, 'When'))), h('tbody', {}, rows))
        : h('p', { class: 'muted' }, 'No catalog item was seen in this video.')),
    h('section', { class: 'panel' }, h('h2', {}, 'The video, annotated'), h('div', { class: 'stage' }, video, overlay), cannot));
}
