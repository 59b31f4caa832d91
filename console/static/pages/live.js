// Live: the browser's camera or a local video file, sent frame by frame to the stream route;
// boxes, track ids and items drawn as answers come back. One frame in flight at a time: the
// frames that come while the service works are dropped, never queued.

import { call, catalogPath, photoType } from '../api.js';
import { fill, fmt, h } from '../dom.js';
import { drawBoxes } from '../draw.js';
import { catalogSelect, errorText, fileInput, toast } from '../ui.js';

const SEND_WIDTH = 640; // frames are sent at most this wide (the detector's own size)

export async function render(root, { params }) {
  const { select, catalogs } = await catalogSelect({ selected: params.catalog });
  root.append(h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Live'),
    h('p', { class: 'muted' }, 'A camera or a video file, frame by frame: tracked objects and the items they are. Frames that arrive while the service is busy are dropped: for every frame of a recorded file use ', h('a', { href: '#/videos' }, 'Whole video'), '.'))));
  if (!catalogs.length) {
    root.append(h('div', { class: 'panel empty' }, 'No catalog yet. ', h('a', { href: '#/catalogs' }, 'Create one'), ' first.'));
    return null;
  }
  const video = h('video', { muted: true, playsinline: true, class: 'hidden' });
  const canvas = h('canvas', { class: 'photo', width: 960, height: 540, dataset: { role: 'live' } });
  const stats = {};
  const statBox = (k, label) => { stats[k] = h('div', { class: 'v', dataset: { stat: k } }, '–'); return h('div', { class: 'stat' }, stats[k], h('div', { class: 'k' }, label)); };
  const tracks = h('div', { class: 'tracks', dataset: { role: 'tracks' } }, h('p', { class: 'muted' }, 'No frame sent yet.'));
  const error = h('div');
  const session = new Session(video, canvas, stats, tracks, error);
  const file = fileInput((files) => session.start(select.value, { file: files[0] }), { accept: 'video/*' });
  file.dataset.role = 'video-input';
  const stop = h('button', { type: 'button', dataset: { role: 'stop' }, onclick: () => session.stop() }, 'Stop');
  root.append(
    h('section', { class: 'panel row' },
      h('label', { class: 'field' }, 'Catalog', select),
      h('span', { class: 'spacer' }),
      h('button', { type: 'button', class: 'primary', dataset: { role: 'camera' }, onclick: () => session.start(select.value, { camera: true }) }, 'Start the camera'),
      h('button', { type: 'button', onclick: () => file.click() }, 'Play a video file'), file, stop),
    error,
    h('div', { class: 'stats' }, statBox('fps', 'answers per second'), statBox('latency', 'latency (ms)'), statBox('sent', 'frames sent'), statBox('dropped', 'frames dropped')),
    h('div', { class: 'split' }, h('div', { class: 'stage' }, canvas, video), h('section', { class: 'panel' }, h('h2', {}, 'Tracks'), tracks)));
  return () => session.stop();
}

class Session {
  constructor(video, canvas, stats, tracks, error) {
    Object.assign(this, { video, canvas, stats, tracks, error });
    this.ctx = canvas.getContext('2d');
    this.grab = document.createElement('canvas');
    this.running = false;
  }

  async start(cid, { camera = false, file = null }) {
    for (const el of Object.values(this.stats)) el.textContent = '–';
    this.generation = (this.generation || 0) + 1; // answers of an earlier session are ignored
    await this.stop();
    fill(this.error);
    this.cid = cid;
    this.streamId = `console-${Math.random().toString(36).slice(2, 10)}`;
    this.client = this.streamId;
    Object.assign(this, { sent: 0, dropped: 0, presented: 0, busy: false, last: null, answers: [], latencies: [] });
    try {
      if (camera) {
        if (!navigator.mediaDevices?.getUserMedia) throw new Error('this browser gives no camera here (it needs https or localhost)');
        this.media = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 1280 } }, audio: false });
        this.video.srcObject = this.media;
      } else {
        this.url = URL.createObjectURL(file);
        this.video.src = this.url;
      }
      await this.video.play();
    } catch (err) {
      fill(this.error, h('div', { class: 'error' }, `Cannot play: ${errorText(err)}`));
      return;
    }
    this.running = true;
    const w = Math.min(960, this.video.videoWidth || 960);
    this.canvas.width = w;
    this.canvas.height = Math.round(w * (this.video.videoHeight || 540) / (this.video.videoWidth || 960));
    this.tick();
  }

  tick() {
    if (!this.running) return;
    const onFrame = () => {
      if (!this.running) return;
      this.presented += 1;
      if (this.busy) this.dropped += 1;
      else this.send(this.presented);
      this.paint();
      this.tick();
    };
    if (this.video.requestVideoFrameCallback) this.video.requestVideoFrameCallback(onFrame);
    else requestAnimationFrame(onFrame);
  }

  async send(index) {
    const v = this.video;
    const scale = Math.min(1, SEND_WIDTH / v.videoWidth);
    this.grab.width = Math.round(v.videoWidth * scale);
    this.grab.height = Math.round(v.videoHeight * scale);
    this.grab.getContext('2d').drawImage(v, 0, 0, this.grab.width, this.grab.height);
    this.busy = true;
    const sentWidth = this.grab.width;
    const { generation } = this;
    try {
      const blob = await new Promise((r) => this.grab.toBlob(r, 'image/jpeg', 0.85));
      const t0 = performance.now();
      const r = await call('POST', `${catalogPath(this.cid)}/streams/${this.streamId}/frames`, {
        body: blob, type: photoType(blob), query: { frame_index: index, top_k: 3 }, header: { 'X-Stream-Client': this.client },
      });
      const answer = await r.json();
      if (!this.running || generation !== this.generation) return;
      const now = performance.now();
      this.sent += 1;
      this.latencies.push(now - t0);
      this.answers.push(now);
      this.last = { answer, sentWidth };
      this.showStats();
      this.showTracks(answer);
    } catch (err) {
      if (this.running && generation === this.generation) { toast(errorText(err), true); this.stop(); }
    } finally {
      if (generation === this.generation) this.busy = false;
    }
  }

  paint() {
    const { ctx, canvas, video } = this;
    ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
    if (!this.last) return;
    const dets = this.last.answer.detections;
    const n = drawBoxes(ctx, dets, {
      scale: canvas.width / this.last.sentWidth,
      label: (d) => [d.track_id === null ? '' : `#${d.track_id}`, d.matches[0] ? `${d.matches[0].item_id} ${fmt.score(d.matches[0].score)}` : d.class].filter(Boolean).join(' '),
    });
    canvas.dataset.boxes = String(n);
  }

  showStats() {
    const now = performance.now();
    this.answers = this.answers.filter((t) => now - t < 5000);
    const span = this.answers.length > 1 ? (this.answers.at(-1) - this.answers[0]) / 1000 : 0;
    const recent = this.latencies.slice(-20);
    this.stats.fps.textContent = span > 0 ? ((this.answers.length - 1) / span).toFixed(1) : '–';
    this.stats.latency.textContent = String(Math.round(recent.reduce((a, b) => a + b, 0) / recent.length));
    this.stats.sent.textContent = String(this.sent);
    this.stats.dropped.textContent = String(this.dropped);
  }

  showTracks(answer) {
    const dets = answer.detections;
    if (!dets.length) { fill(this.tracks, h('p', { class: 'muted' }, `Frame ${answer.frame_index}: nothing detected.`)); return; }
    fill(this.tracks, h('table', {},
      h('thead', {}, h('tr', {}, h('th', {}, 'Track'), h('th', {}, 'Class'), h('th', {}, 'Best item'), h('th', { class: 'num' }, 'Score'))),
      h('tbody', {}, dets.map((d) => h('tr', { dataset: { track: d.track_id ?? '' } },
        h('td', {}, d.track_id === null ? '–' : `#${d.track_id}`), h('td', {}, d.class),
        h('td', {}, d.matches[0] ? d.matches[0].item_id : '–', ' ', d.matches[0]?.verified ? h('span', { class: 'badge ok' }, 'verified') : null),
        h('td', { class: 'num' }, d.matches[0] ? fmt.score(d.matches[0].score) : '–'))))));
  }

  async stop() {
    const was = this.running;
    this.running = false;
    this.video.pause();
    if (this.media) { this.media.getTracks().forEach((t) => t.stop()); this.media = null; this.video.srcObject = null; }
    if (this.url) { URL.revokeObjectURL(this.url); this.url = null; this.video.removeAttribute('src'); }
    if (was && this.streamId) await call('DELETE', `${catalogPath(this.cid)}/streams/${this.streamId}`).catch(() => {});
  }
}
