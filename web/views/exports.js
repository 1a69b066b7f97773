// Exports: every export with its live progress and, once ready, its download.
import { api, onEvent } from '../api.js';
import { empty, formatDate, h, pageHeader, replace, showError } from '../ui.js';

const STATE_WORDS = { queued: 'Waiting', running: 'Writing metadata', ready: 'Ready', failed: 'Failed', cancelled: 'Cancelled', expired: 'Expired' };

export async function render(main) {
  const list = h('ul', { class: 'export-list' });
  main.append(pageHeader('Exports'), h('p', { class: 'hint' }, 'Zips of your photos with tags, people, face regions, ratings and albums written into each file (XMP, IPTC). They are kept for 24 hours.'), list);
  let timer = null;
  async function draw() {
    try {
      const page = await api('/v1/exports', { query: { limit: 50 } });
      if (!page.items.length) { replace(list, empty('No exports yet', 'Export an album, a search or a selection of photos.')); return; }
      replace(list, page.items.map((item) => h('li', { class: `export card ${item.state}`, dataset: { exportId: item.id, state: item.state } },
        h('div', {}, h('strong', {}, `${item.total} photo${item.total === 1 ? '' : 's'}`), h('span', { class: 'hint' }, ` · started ${formatDate(item.created_at, true)}`)),
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
