// One album: its photos in album order; rename, export, remove photos, delete the album.
import { api } from '../api.js';
import { startExport } from '../bulk.js';
import { confirmDialog, empty, h, navigate, pageHeader, pagedGrid, photoTile, promptDialog, replace, showError, toast } from '../ui.js';

export async function render(main, [albumId]) {
  let album = await api(`/v1/albums/${albumId}`);
  const selection = new Set();
  const title = h('h1', {}, album.name);
  const removeButton = h('button', {
    type: 'button', class: 'secondary', disabled: true, onclick: async () => {
      try {
        await api(`/v1/albums/${album.id}/photos`, { method: 'DELETE', json: { photo_ids: [...selection] } });
        toast('Removed from the album');
        selection.clear();
        draw();
      } catch (error) { showError(error); }
    },
  }, 'Remove selected');
  const head = pageHeader('',
    h('button', { type: 'button', id: 'export-album', onclick: () => startExport({ search: { album: album.id } }) }, 'Export album'),
    h('button', { type: 'button', class: 'secondary', onclick: async () => {
      const name = await promptDialog('Rename the album', { value: album.name, confirmLabel: 'Rename' });
      if (!name) return;
      try { album = await api(`/v1/albums/${album.id}`, { method: 'PATCH', json: { name } }); title.textContent = album.name; } catch (error) { showError(error); }
    } }, 'Rename'),
    removeButton,
    h('button', { type: 'button', class: 'danger', onclick: async () => {
      if (!(await confirmDialog(`Delete the album “${album.name}”? Its photos stay in your library.`, 'Delete album'))) return;
      try { await api(`/v1/albums/${album.id}`, { method: 'DELETE' }); navigate('/albums'); } catch (error) { showError(error); }
    } }, 'Delete album'));
  head.querySelector('h1').replaceWith(title);
  const body = h('div', {});
  main.append(head, h('p', { class: 'hint' }, `${album.photo_count} photos`), body);
  let grid = null;
  function draw() {
    grid?.stop();
    removeButton.disabled = true;
    grid = pagedGrid((cursor) => api(`/v1/albums/${album.id}/photos`, { query: { limit: 120, cursor } }),
      (photo) => photoTile(photo, { selectable: selection }), { emptyState: empty('This album is empty', 'Add photos from the library or from a search.') });
    grid.addEventListener('selection', () => { removeButton.disabled = selection.size === 0; });
    replace(body, grid);
  }
  draw();
  return () => grid?.stop();
}
