// Exports: every export with its live progress and, once ready, its download.
import { all, api, onEvent } from '../api.js';
import { empty, formatDate, h, pageHeader, replace, showError } from '../ui.js';

const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** What an export holds, in words: the album, search words and filters it was made from. */
export function exportTitle(item, names) {
  const search = item.search;
  if (!search) return `${plural(item.total, 'chosen photo')}`;
  const parts = [];
  if (search.album) parts.push(`Album “${names.albums.get(search.album) || 'a deleted album'}”`);
  if (search.q) parts.push(`Search “${search.q}”`);
  if (search.people?.length) parts.push(`with ${search.people.map((id) => names.people.get(id) || 'somebody').join(' and ')}`);
  if (search.tags?.length) parts.push(`tagged ${search.tags.join(', ')}`);
  if (search.any_tags?.length) parts.push(`tagged any of ${search.any_tags.join(', ')}`);
  if (search.place) parts.push(`in ${search.place}`);
  if (search.radius_km) parts.push(`within ${search.radius_km} km of ${Number(search.lat).toFixed(2)}, ${Number(search.lon).toFixed(2)}`);
  if (search.camera) parts.push(`camera ${search.camera}`);
  if (search.taken_after || search.taken_before) parts.push(`taken ${search.taken_after ? `from ${formatDate(search.taken_after)} ` : ''}${search.taken_before ? `until ${formatDate(search.taken_before)}` : ''}`.trim());
  if (search.favorite === true) parts.push('favourites');
  if (search.min_rating) parts.push(`${search.min_rating}★ and up`);
  if (search.min_quality) parts.push(`quality ${search.min_quality}+`);
  if (!parts.length) return 'The whole library';
  const text = parts.join(' · ');
  return text[0].toUpperCase() + text.slice(1);
}

const STATE_WORDS = { queued: 'Waiting', running: 'Writing metadata', ready: 'Ready', failed: 'Failed', cancelled: 'Cancelled', expired: 'Expired' };

export async function render(main) {
  const list = h('ul', { class: 'export-list' });
  main.append(pageHeader('Exports'), h('p', { class: 'hint' }, 'Zips of your photos with tags, people, face regions, ratings and albums written into each file (XMP, IPTC). They are kept for 24 hours.'), list);
  let timer = null;
  let names = null;
  async function draw() {
    try {
      const page = await api('/v1/exports', { query: { limit: 50 } });
      const unknown = (item) => (item.search?.album && !names?.albums.has(item.search.album)) || (item.search?.people || []).some((id) => !names?.people.has(id));
      if (page.items.some(unknown)) {
        const [albums, people] = await Promise.all([all('/v1/albums'), all('/v1/people', { include_hidden: true })]);
        names = { albums: new Map(albums.map((a) => [a.id, a.name])), people: new Map(people.map((p) => [p.id, p.name])) };
      }
      if (!page.items.length) { replace(list, empty('No exports yet', 'Export an album, a search or a selection of photos.')); return; }
      replace(list, page.items.map((item) => h('li', { class: `export card ${item.state}`, dataset: { exportId: item.id, state: item.state } },
        h('div', {}, h('strong', { class: 'export-title' }, exportTitle(item, names || { albums: new Map(), people: new Map() })),
          h('span', { class: 'hint' }, ` · ${plural(item.total, 'photo')} · started ${formatDate(item.created_at, true)}${item.state === 'ready' ? ` · kept until ${formatDate(item.expires_at, true)}` : ''}`)),
        h('div', { class: 'row' }, h('progress', { max: item.total || 1, value: item.state === 'ready' ? item.total || 1 : item.done, 'aria-label': 'Export progress' }),
          h('span', {}, STATE_WORDS[item.state] || item.state, item.state === 'running' ? ` ${item.done} of ${item.total}` : '')),
        item.errors.length ? h('p', { class: 'hint' }, `${item.errors.length} problem${item.errors.length === 1 ? '' : 's'}: ${item.errors.slice(0, 2).map((e) => e.error || e.detail || JSON.stringify(e)).join('; ')}`) : null,
        item.download_url ? h('a', { class: 'button', href: item.download_url, download: '' }, `Download zip${item.size_bytes ? ` (${(item.size_bytes / 1048576).toFixed(1)} MB)` : ''}`) : null)));
      clearTimeout(timer);
      if (page.items.some((item) => item.state === 'queued' || item.state === 'running')) timer = setTimeout(draw, 1500);
    } catch (error) { showError(error); }
  }
  const stop = onEvent((kind, data) => { if (kind === 'job' && data.type === 'export') draw(); });
  await draw();
  return () => { stop(); clearTimeout(timer); };
}
