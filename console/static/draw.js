// Boxes, labels and track ids drawn on a canvas (text drawn as pixels, never as HTML).

export const COLORS = { verified: '#16a34a', candidate: '#f59e0b', none: '#94a3b8', frame: '#60a5fa' };

/** The colour of a detection: green when its best candidate is verified. */
export function colorOf(det) {
  const best = det.matches && det.matches[0];
  if (!best) return det.class === 'image' ? COLORS.frame : COLORS.none;
  return best.verified ? COLORS.verified : COLORS.candidate;
}

/**
 * Draw ``dets`` (boxes in the frame's pixels) on ``ctx``, scaled by ``scale``.
 * ``label(det, i)`` gives each box's caption. Returns the number of boxes drawn.
 */
export function drawBoxes(ctx, dets, { scale = 1, label = () => '', lineWidth } = {}) {
  const w = ctx.canvas.width;
  const lw = lineWidth || Math.max(2, Math.round(w / 320));
  const fontPx = Math.max(12, Math.round(w / 55));
  ctx.font = `600 ${fontPx}px system-ui, sans-serif`;
  ctx.textBaseline = 'top';
  let drawn = 0;
  const placed = []; // caption rectangles already drawn: a new one never covers them
  const captions = [];
  dets.forEach((det, i) => {
    const [x0, y0, x1, y1] = det.box.map((v) => v * scale);
    const color = colorOf(det);
    ctx.save();
    ctx.lineWidth = lw;
    ctx.strokeStyle = color;
    if (det.class === 'image') ctx.setLineDash([lw * 4, lw * 3]);
    const inset = det.class === 'image' ? lw : 0;
    ctx.strokeRect(x0 + inset, y0 + inset, x1 - x0 - 2 * inset, y1 - y0 - 2 * inset);
    ctx.restore();
    drawn += 1;
    const text = label(det, i);
    if (text) captions.push({ text, color, x0: x0 + inset, y0, y1, inset, whole: det.class === 'image' });
  });
  // captions after every box, so no box line crosses a caption
  const pad = Math.round(fontPx / 3);
  const th = fontPx + 2 * pad;
  for (const c of captions) {
    const tw = ctx.measureText(c.text).width + 2 * pad;
    const [tx, ty] = placeCaption(c, tw, th, w, ctx.canvas.height, placed);
    placed.push([tx, ty, tx + tw, ty + th]);
    ctx.fillStyle = c.color;
    ctx.fillRect(tx, ty, tw, th);
    ctx.fillStyle = '#ffffff';
    ctx.fillText(c.text, tx + pad, ty + pad);
  }
  return drawn;
}

const overlaps = (a, b) => a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3];

/**
 * Where a caption of ``tw`` x ``th`` goes: above its box, else inside its top, else below it;
 * then moved down (or up) a line at a time until it covers no caption already placed.
 */
export function placeCaption(c, tw, th, w, height, placed) {
  const tx = Math.min(Math.max(0, c.x0), Math.max(0, w - tw));
  const starts = c.whole ? [c.y0 + c.inset] : [c.y0 - th, c.y0 + c.inset, c.y1];
  const free = (y) => y >= 0 && y + th <= height && !placed.some((r) => overlaps([tx, y, tx + tw, y + th], r));
  for (const y of starts) if (free(y)) return [tx, y];
  const base = Math.max(0, Math.min(height - th, starts[0]));
  for (let step = 1; step < 60; step += 1) {
    for (const y of [base + step * th, base - step * th]) if (free(y)) return [tx, y];
  }
  return [tx, base];
}

/** An image file as an ImageBitmap (orientation from EXIF, as the browser shows it). */
export const bitmapOf = (blob) => createImageBitmap(blob, { imageOrientation: 'from-image' });
