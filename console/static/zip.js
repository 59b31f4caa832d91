// The photos inside a zip the user picked, read in the browser (the card's grid draws its boxes
// on the user's own copy: the service keeps pictures of the animal photos only). Stored and
// deflated members; deflate through the browser's own DecompressionStream.

const IMAGE = /\.(jpe?g|png)$/i;
const TYPES = { jpg: 'image/jpeg', jpeg: 'image/jpeg', png: 'image/png' };

/** The image members of ``file`` (a zip Blob) as Map name -> lazy () => Promise<Blob>. */
export async function zipImages(file) {
  const out = new Map();
  const tailLen = Math.min(file.size, 65557);
  const tail = new DataView(await file.slice(file.size - tailLen).arrayBuffer());
  let eocd = -1;
  for (let i = tailLen - 22; i >= 0; i -= 1) if (tail.getUint32(i, true) === 0x06054b50) { eocd = i; break; }
  if (eocd < 0) return out;
  const count = tail.getUint16(eocd + 10, true);
  const size = tail.getUint32(eocd + 12, true);
  const offset = tail.getUint32(eocd + 16, true);
  if (offset === 0xffffffff) return out; // zip64: not read here (the grid uses the job's pictures)
  const cd = new DataView(await file.slice(offset, offset + size).arrayBuffer());
  const decoder = new TextDecoder();
  let p = 0;
  for (let n = 0; n < count && p + 46 <= cd.byteLength; n += 1) {
    if (cd.getUint32(p, true) !== 0x02014b50) break;
    const method = cd.getUint16(p + 10, true);
    const compressed = cd.getUint32(p + 20, true);
    const nameLen = cd.getUint16(p + 28, true);
    const extraLen = cd.getUint16(p + 30, true);
    const commentLen = cd.getUint16(p + 32, true);
    const local = cd.getUint32(p + 42, true);
    const name = decoder.decode(new Uint8Array(cd.buffer, cd.byteOffset + p + 46, nameLen));
    p += 46 + nameLen + extraLen + commentLen;
    if (!IMAGE.test(name) || name.startsWith('__MACOSX/') || (method !== 0 && method !== 8)) continue;
    const type = TYPES[name.split('.').pop().toLowerCase()];
    out.set(name, async () => {
      const head = new DataView(await file.slice(local, local + 30).arrayBuffer());
      const start = local + 30 + head.getUint16(26, true) + head.getUint16(28, true);
      const raw = file.slice(start, start + compressed);
      if (method === 0) return new Blob([raw], { type });
      const stream = raw.stream().pipeThrough(new DecompressionStream('deflate-raw'));
      return new Blob([await new Response(stream).arrayBuffer()], { type });
    });
  }
  return out;
}
