// Building elements without HTML strings: every text (ids, metadata, file names) is a text node.

const PROPS = new Set(['value', 'checked', 'disabled', 'hidden', 'multiple', 'selected', 'open']);

/**
 * An element: h('a', {href: '#/x', class: 'y', onclick: fn}, 'text', child, [more]).
 * Strings become text nodes (never parsed as HTML); null/false children are skipped.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'style') el.style.cssText = v; // CSSOM: allowed by the CSP, unlike the attribute
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (PROPS.has(k)) el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  add(el, children);
  return el;
}

/** Append children (nodes, strings, numbers, nested arrays) to ``el``. */
export function add(el, children) {
  for (const c of [children].flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

/** Replace the children of ``el``. */
export function fill(el, ...children) {
  el.replaceChildren();
  return add(el, children);
}

/** A value shown as text: strings as they are, anything else as JSON. */
export function asText(value) {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** "3 s ago", "5 min ago", or the date. */
export function ago(iso) {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return '';
  const s = Math.max(0, (Date.now() - t) / 1000);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(t).toLocaleDateString();
}

export const fmt = {
  score: (v) => (v === null || v === undefined ? '–' : v.toFixed(2)),
  pct: (v) => (v === null || v === undefined ? '–' : `${Math.round(v * 100)} %`),
};
