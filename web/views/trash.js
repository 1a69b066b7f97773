// Trash: photos moved there, newest first; restore a selection, or empty it for good.
import { api } from '../api.js';
import { confirmDialog, empty, formatDate, h, pageHeader, pagedGrid, photoTile, replace, showError, toast } from '../ui.js';

export async function render(main) {
  const selection = new Set();
  const restore = h('button', {
    type: 'button', id: 'restore', disabled: true, onclick: async () => {
      try {
        await api('/v1/trash/restore', { method: 'POST', json: { photo_ids: [...selection] } });
        toast(`Restored ${selection.size} photo${selection.size === 1 ? '' : 's'}`);
        selection.clear();
        draw();
      } catch (error) { showError(error); }
    },
  }, 'Restore selected');
  const emptyButton = h('button', {
    type: 'button', class: 'danger', onclick: async () => {
      if (!(await confirmDialog('Delete every photo in the trash for good? This cannot be undone.', 'Empty trash'))) return;
      try { const result = await api('/v1/trash', { method: 'DELETE' }); toast(`Deleted ${result.purged} for good`); draw(); } catch (error) { showError(error); }
    },
  }, 'Empty trash');
  const body = h('div', {});
  main.append(pageHeader('Trash', restore, emptyButton), h('p', { class: 'hint' }, 'Photos here are hidden everywhere and deleted for good after a while; restoring brings back their tags, faces and albums.'), body);
  let grid = null;
  function draw() {
    grid?.stop();
    restore.disabled = true;
    grid = pagedGrid((cursor) => api('/v1/trash', { query: { limit: 120, cursor } }),
      (photo) => photoTile(photo, { selectable: selection, caption: `Trashed ${formatDate(photo.trashed_at)}` }),
      { emptyState: empty('The trash is empty', 'Photos you delete wait here before they go for good.') });
    grid.addEventListener('selection', () => { restore.disabled = selection.size === 0; });
    replace(body, grid);
  }
  draw();
  return () => grid?.stop();
}
