// Pages that other parts of the service bring (camera-trap batches, collection analytics):
// "coming" until the service has their routes; then the routes it has, linked to the API
// document, until their own page is written.

import { h } from '../dom.js';

const ABOUT = {
  traps: {
    title: 'Camera traps',
    text: 'Whole SD cards of camera-trap photos at once: which photos hold an animal, what it is, which known individual, with contact sheets to check.',
    pattern: /trap|camera-?trap|batches/i,
  },
  analytics: {
    title: 'Analytics',
    text: 'A catalog’s clusters, outliers, look-alikes and a map of its photos; the quality warnings of its reference photos.',
    pattern: /analytics|quality|clusters/i,
  },
};

let paths = [];
export function setPaths(p) { paths = p; }

export async function render(root, { page, available }) {
  const about = ABOUT[page.id];
  const mine = paths.filter((p) => about.pattern.test(p));
  root.append(h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, about.title, ' ', h('span', { class: 'badge' }, available[page.id] ? 'API ready' : 'coming')),
    h('p', { class: 'muted' }, about.text))));
  root.append(available[page.id]
    ? h('section', { class: 'panel' }, h('h2', {}, 'Routes of this service'),
      h('ul', {}, mine.map((p) => h('li', { class: 'mono' }, p))),
      h('p', {}, 'Their console page is on its way; meanwhile they are in the ', h('a', { href: '/docs', target: '_blank' }, 'API document'), '.'))
    : h('section', { class: 'panel empty' }, 'This service does not have these routes yet. They come with a later release.'));
}
