"""The map as one self-contained HTML file (no network): a canvas with pan (drag), zoom
(wheel), and hover showing the image's thumbnail (embedded as data: URIs), path, cluster and
outlier score."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np

from analytics.data import AnalyticsResult
from analytics.outputs.pictures import ImageReader, thumbnail

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Sighting analytics map</title>
<style>
body{margin:0;font:13px sans-serif;background:#fafafa}
#bar{padding:6px 10px;background:#fff;border-bottom:1px solid #ddd}
#map{display:block;cursor:grab}
#tip{position:fixed;pointer-events:none;background:#fff;border:1px solid #999;padding:4px;
display:none;max-width:260px;box-shadow:0 2px 6px rgba(0,0,0,.2)}
#tip img{display:block;max-width:128px;max-height:128px}
</style></head><body>
<div id="bar">__TITLE__ &mdash; drag to pan, wheel to zoom, hover a dot for its image</div>
<canvas id="map"></canvas><div id="tip"></div>
<script>
const D = __DATA__;
const cv = document.getElementById('map'), ctx = cv.getContext('2d');
const tip = document.getElementById('tip');
const pal = ['#1f77b4','#ff7f0e','#2ca02c','#d62728','#9467bd','#8c564b','#e377c2',
 '#7f7f7f','#bcbd22','#17becf','#aec7e8','#ffbb78','#98df8a','#ff9896','#c5b0d5',
 '#c49c94','#f7b6d2','#dbdb8d','#9edae5','#393b79'];
let W, H, scale = 1, ox = 0, oy = 0, drag = null;
function resize(){ W = cv.width = innerWidth; H = cv.height = innerHeight - 32; draw(); }
function sx(x){ return ox + x * scale * Math.min(W, H) * 0.95 + 10; }
function sy(y){ return oy + (1 - y) * scale * Math.min(W, H) * 0.95 + 10; }
function draw(){
  ctx.clearRect(0, 0, W, H);
  const r = Math.max(1.5, Math.min(6, 2 * Math.sqrt(scale)));
  for (let i = 0; i < D.x.length; i++){
    const c = D.c[i];
    ctx.fillStyle = c < 0 ? '#ccc' : pal[c % pal.length];
    ctx.beginPath(); ctx.arc(sx(D.x[i]), sy(D.y[i]), r, 0, 6.283); ctx.fill();
    if (D.o[i]){ ctx.strokeStyle = '#000'; ctx.lineWidth = 1.2; ctx.stroke(); }
  }
}
cv.addEventListener('mousedown', e => { drag = [e.clientX - ox, e.clientY - oy]; });
addEventListener('mouseup', () => { drag = null; });
cv.addEventListener('wheel', e => {
  e.preventDefault();
  const f = e.deltaY < 0 ? 1.2 : 1 / 1.2, mx = e.offsetX, my = e.offsetY;
  ox = mx - (mx - ox) * f; oy = my - (my - oy) * f; scale *= f; draw();
}, {passive: false});
cv.addEventListener('mousemove', e => {
  if (drag){ ox = e.clientX - drag[0]; oy = e.clientY - drag[1]; draw(); return; }
  let best = -1, bd = 64;
  for (let i = 0; i < D.x.length; i++){
    const dx = sx(D.x[i]) - e.offsetX, dy = sy(D.y[i]) - e.offsetY, d = dx * dx + dy * dy;
    if (d < bd){ bd = d; best = i; }
  }
  if (best < 0){ tip.style.display = 'none'; return; }
  const t = D.t[best];
  tip.innerHTML = (t ? '<img src="data:image/jpeg;base64,' + t + '">' : '') +
    '<div>' + D.p[best].replace(/[<&]/g, '') + '</div><div>cluster ' + D.c[best] +
    ', outlier score ' + D.s[best] + (D.o[best] ? ' (outlier)' : '') + '</div>';
  tip.style.left = (e.clientX + 14) + 'px'; tip.style.top = (e.clientY + 14) + 'px';
  tip.style.display = 'block';
});
addEventListener('resize', resize); resize();
</script></body></html>
"""


def write_html_map(
    result: AnalyticsResult,
    read: ImageReader | None,
    path: Path,
    max_points: int = 20_000,
    max_thumbs: int = 1500,
    thumb_side: int = 96,
) -> Path:
    """Write the HTML map: at most ``max_points`` dots (seeded sample, outliers always in),
    thumbnails for at most ``max_thumbs`` of them (outliers first)."""
    n = len(result.paths)
    rng = np.random.default_rng(0)
    outl = np.flatnonzero(result.outlier)
    rows = np.arange(n)
    if n > max_points:
        rest = np.setdiff1d(rows, outl)
        take = max(0, max_points - len(outl[:max_points]))
        rows = np.sort(np.r_[outl[:max_points], rng.choice(rest, take, replace=False)])
    thumbs = [""] * len(rows)
    if read is not None:
        order = sorted(range(len(rows)), key=lambda j: (not result.outlier[rows[j]], j))
        for j in order[:max_thumbs]:
            image = read(result.paths[rows[j]])
            if image is None:
                continue
            buf = io.BytesIO()
            thumbnail(image, thumb_side).save(buf, format="JPEG", quality=70)
            thumbs[j] = base64.b64encode(buf.getvalue()).decode()
    data = {
        "x": [round(float(v), 4) for v in result.xy[rows, 0]],
        "y": [round(float(v), 4) for v in result.xy[rows, 1]],
        "c": result.cluster[rows].tolist(),
        "o": [int(v) for v in result.outlier[rows]],
        "s": [round(float(v), 2) for v in result.outlier_score[rows]],
        "p": [result.paths[i] for i in rows],
        "t": thumbs,
    }
    title = (
        f"{n} images, {int(result.metrics.get('clusters', 0))} clusters, "
        f"{int(result.outlier.sum())} outliers"
        + (f" (showing {len(rows)})" if len(rows) < n else "")
    )
    # JSON inside <script>: escape '</' so a path can never close the script element
    payload = json.dumps(data).replace("</", "<\\/")
    path.write_text(PAGE.replace("__TITLE__", title).replace("__DATA__", payload))
    return path
