// Search: words (each result says why it matched), or an example image dropped on the page; the
// library's filters apply to both. Results can become an album or an export.
import { api } from '../api.js';
import { startExport } from '../bulk.js';
import { activeCount, apiFilters, filterSidebar, readFilters, searchSelection, writeFilters } from '../filters.js';
import { empty, h, link, loading, pageHeader, pagedGrid, percent, photoTile, promptDialog, replace, showError, toast } from '../ui.js';

const FIELD_WORDS = { tag: 'your tag', object: 'object', label: 'label', category: 'category', person: 'person', caption: 'caption', place: 'place', date: 'date', camera: 'camera', filename: 'file name', content: 'content', looks_like: 'looks like', image: 'image' };

export function reason(hit) {
  const match = hit.matched[0];
  if (!match) return null;
  if (match.field === 'image') return match.similarity != null ? `${match.value} · ${percent(match.similarity)}` : match.value;
  if (match.field === 'looks_like') return match.value;
  return `${FIELD_WORDS[match.field] || match.field}: ${match.value}`;
}

export async function render(main, _params, query) {
  let state = readFilters(query);
  let q = query.get('q') || '';
  let imageHits = null;
  const input = h('input', { type: 'search', id: 'search-q', name: 'q', value: q, autocomplete: 'off', 'aria-label': 'Search words', placeholder: 'dog on a bench, Alice, Paris 2014…' });
  const fileInput = h('input', { type: 'file', id: 'search-image', accept: 'image/*', class: 'visually-hidden' });
  const drop = h('label', { class: 'dropzone small', for: 'search-image', tabindex: '0' }, h('strong', {}, 'Search by image'), h('span', {}, 'drop a photo here or press to choose one'));
  const results = h('div', { class: 'library-main', id: 'search-results' });
  const layout = h('div', { class: 'library' });
  const summary = h('p', { class: 'hint', role: 'status' });
  const saveAlbum = h('button', { type: 'button', class: 'secondary', id: 'save-album', disabled: true, onclick: () => makeAlbum() }, 'Save as album');
  const exportAll = h('button', { type: 'button', class: 'secondary', disabled: true, onclick: () => startExport(imageHits ? { photo_ids: imageHits.map((hit) => hit.photo.id) } : { search: searchSelection(state, q) }) }, 'Export results');
  main.append(pageHeader('Search', saveAlbum, exportAll),
    h('form', { class: 'search-form', role: 'search', onsubmit: (event) => { event.preventDefault(); q = input.value.trim(); imageHits = null; refresh(); } },
      input, h('button', { type: 'submit' }, 'Search')),
    fileInput, drop, summary, layout);
  let grid = null;

  function change(next) { state = next; refresh(); }

  function refresh() {
    grid?.stop();
    writeFilters(state, { q });
    const sidebar = h('details', { class: 'filters-wrap', open: innerWidth > 800 }, h('summary', {}, `Filters${activeCount(state) ? ` (${activeCount(state)})` : ''}`), filterSidebar(state, change));
    replace(layout, sidebar, results);
    const ready = Boolean(q) || imageHits !== null;
    saveAlbum.disabled = exportAll.disabled = !ready;
    if (imageHits) {
      replace(summary, `${imageHits.length} photo${imageHits.length === 1 ? '' : 's'} like your image`);
      replace(results, imageHits.length ? h('div', { class: 'grid' }, imageHits.map((hit) => photoTile(hit.photo, { caption: reason(hit) }))) : empty('No similar photos', 'Nothing in your library looks like this image.'));
      return;
    }
    if (!q) {
      replace(summary);
      replace(results, empty('Search your photos', 'Type what is in them, who, where or when, or drop an example photo.'));
      return;
    }
    replace(summary, `Results for “${q}”`);
    grid = pagedGrid((cursor) => api('/v1/search', { query: { q, ...apiFilters(state), limit: 60, cursor } }),
      (hit) => photoTile(hit.photo, { caption: reason(hit) }),
      { emptyState: empty(`Nothing found for “${q}”`, 'Try other words, or fewer filters.'), photoId: (hit) => hit.photo.id });
    replace(results, grid);
  }

  async function searchByImage(file) {
    replace(results, loading('Comparing'));
    const form = new FormData();
    form.append('file', file, file.name);
    try {
      imageHits = (await api('/v1/search/by-image', { method: 'POST', body: form, query: { ...apiFilters(state), limit: 60 } })).items;
      q = '';
      input.value = '';
      refresh();
    } catch (error) { imageHits = null; showError(error); refresh(); }
  }

  async function makeAlbum() {
    const name = await promptDialog('Save these results as an album', { label: 'Album name', value: q, confirmLabel: 'Create album' });
    if (!name) return;
    try {
      const album = await api('/v1/albums', { method: 'POST', json: { name } });
      const body = imageHits ? { photo_ids: imageHits.map((hit) => hit.photo.id) } : { search: searchSelection(state, q) };
      const result = await api(`/v1/albums/${album.id}/photos`, { method: 'POST', json: body });
      toast(`Album “${name}” made with ${result.changed} photos`);
      replace(summary, 'Saved as ', link(`/albums/${album.id}`, {}, name));
    } catch (error) { showError(error); }
  }

  fileInput.addEventListener('change', () => { if (fileInput.files[0]) searchByImage(fileInput.files[0]); fileInput.value = ''; });
  drop.addEventListener('keydown', (event) => { if (event.key === 'Enter' || event.key === ' ') { event.preventDefault(); fileInput.click(); } });
  drop.addEventListener('dragover', (event) => { event.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (event) => { event.preventDefault(); drop.classList.remove('over'); if (event.dataTransfer.files[0]) searchByImage(event.dataTransfer.files[0]); });
  refresh();
  if (!q) input.focus();
  return () => grid?.stop();
}
