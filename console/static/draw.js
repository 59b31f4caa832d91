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
    if (!text) return;
    const pad = Math.round(fontPx / 3);
    const tw = ctx.measureText(text).width + 2 * pad;
    const th = fontPx + 2 * pad;
    const ty = y0 - th >= 0 && det.class !== 'image' ? y0 - th : y0 + inset;
    const tx = Math.min(Math.max(0, x0 + inset), Math.max(0, w - tw));
    ctx.fillStyle = color;
    ctx.fillRect(tx, ty, tw, th);
    ctx.fillStyle = '#ffffff';
    ctx.fillText(text, tx + pad, ty + pad);
  });
  return drawn;
}

/** An image file as an ImageBitmap (orientation from EXIF, as the browser shows it). */
export const bitmapOf = (blob) => createImageBitmap(blob, { imageOrientation: 'from-image' });
