// Library: every photo newest first in a paged grid, a timeline scrubber, the filter sidebar, and
// selection with bulk actions.
import { api } from '../api.js';
import { selectionBar, startExport } from '../bulk.js';
import { activeCount, apiFilters, filterSidebar, readFilters, searchSelection, writeFilters } from '../filters.js';
import { empty, h, link, monthName, pageHeader, photoTile, replace, showError, virtualGrid } from '../ui.js';

export async function render(main, _params, query) {
  let state = readFilters(query);
  const selection = new Set();
  const layout = h('div', { class: 'library' });
  const content = h('div', { class: 'library-main' });
  const timeline = h('nav', { class: 'timeline', 'aria-label': 'Timeline' });
  let grid = null;
  const bar = selectionBar(selection, () => refresh());
  main.append(
    pageHeader('Library',
      h('button', { type: 'button', class: 'secondary', onclick: () => startExport({ search: searchSelection(state) }) }, 'Export these'),
      link('/upload', { class: 'button' }, 'Upload')),
    bar, layout);

  function change(next) {
    state = next;
    writeFilters(state);
    refresh();
  }

  function refresh() {
    grid?.stop();
    bar.update();
    const filters = apiFilters(state);
    const sidebar = h('details', { class: 'filters-wrap', open: innerWidth > 800 }, h('summary', {}, `Filters${activeCount(state) ? ` (${activeCount(state)})` : ''}`), filterSidebar(state, change));
    grid = virtualGrid(
      (cursor) => api('/v1/photos', { query: { ...filters, sort: '-taken_at', limit: 200, cursor } }),
      (photo) => photoTile(photo, { selectable: selection }),
      {
        emptyState: activeCount(state)
          ? empty('No photos match these filters', 'Clear a filter to see more.')
          : empty('Your library is empty', 'Upload photos to start: they are tagged, faces found and made searchable.', link('/upload', { class: 'button' }, 'Upload photos')),
      });
    grid.addEventListener('selection', () => bar.update());
    replace(content, grid);
    replace(layout, sidebar, content, timeline);
    api('/v1/timeline', { query: { ...filters, month: undefined, taken_after: state.year ? filters.taken_after : undefined, taken_before: state.year ? filters.taken_before : undefined, bucket: 'month' } })
      .then((answer) => replace(timeline, answer.items.length ? h('ol', {}, answer.items.map((bucket) => h('li', {},
        h('button', {
          type: 'button', class: 'month', 'aria-pressed': String(state.month === bucket.bucket), dataset: { month: bucket.bucket || '' },
          disabled: !bucket.bucket,
          onclick: () => change({ ...state, month: state.month === bucket.bucket ? undefined : bucket.bucket, year: undefined }),
        }, h('span', {}, monthName(bucket.bucket)), h('span', { class: 'count' }, bucket.count))))) : null))
      .catch(showError);
  }
  refresh();
  return () => grid?.stop();
}
