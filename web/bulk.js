// Selection bar with bulk actions over selected photo ids (POST /v1/photos/bulk, albums, exports).
import { all, api } from './api.js';
import { confirmDialog, h, navigate, promptDialog, replace, showError, toast } from './ui.js';

export function selectionBar(selection, onDone) {
  const bar = h('div', { class: 'selection-bar', role: 'toolbar', 'aria-label': 'Selected photos', hidden: true });
  const count = h('strong', {});
  const run = async (operations, message) => {
    rating.value = '';
    try {
      await api('/v1/photos/bulk', { method: 'POST', json: { photo_ids: [...selection], operations } });
      toast(message);
      selection.clear();
      onDone();
    } catch (error) { showError(error); }
  };
  const rating = h('select', { 'aria-label': 'Rate selected', onchange: () => { if (rating.value !== '') run({ rating: Number(rating.value) }, 'Rated'); } },
    h('option', { value: '' }, 'Rate…'), [0, 1, 2, 3, 4, 5].map((n) => h('option', { value: n }, n ? `${n}★` : 'No rating')));
  replace(bar, count,
    h('button', { type: 'button', onclick: () => run({ favorite: true }, 'Added to favourites') }, '♥ Favourite'),
    rating,
    h('button', { type: 'button', onclick: async () => { const tag = await promptDialog('Add a tag to the selected photos', { label: 'Tag', confirmLabel: 'Add tag' }); if (tag) run({ add_tags: [tag] }, `Tagged “${tag}”`); } }, 'Tag'),
    h('button', { type: 'button', onclick: () => addToAlbum(selection, onDone) }, 'Add to album'),
    h('button', { type: 'button', onclick: () => run({ rotation: 90 }, 'Rotated') }, 'Rotate ↻'),
    h('button', { type: 'button', onclick: () => exportIds([...selection]) }, 'Export'),
    h('button', { type: 'button', class: 'danger', onclick: async () => { if (await confirmDialog(`Move ${selection.size} photos to the trash?`, 'Move to trash')) run({ trash: true }, 'Moved to the trash'); } }, 'Trash'),
    h('button', { type: 'button', class: 'link', onclick: () => { selection.clear(); onDone(); } }, 'Clear selection'));
  bar.update = () => {
    bar.hidden = selection.size === 0;
    count.textContent = `${selection.size} selected`;
  };
  return bar;
}

async function addToAlbum(selection, onDone) {
  try {
    const albums = await all('/v1/albums');
    const choice = h('select', { name: 'album' }, h('option', { value: '' }, 'A new album…'), albums.map((a) => h('option', { value: a.id }, a.name)));
    const name = h('input', { name: 'name', placeholder: 'New album name' });
    const dialog = h('dialog', { class: 'dialog' }, h('form', { method: 'dialog' },
      h('p', {}, `Add ${selection.size} photos to an album`), h('label', {}, 'Album', choice), h('label', {}, 'Name of a new album', name),
      h('div', { class: 'actions' }, h('button', { value: 'cancel', class: 'secondary', formnovalidate: true }, 'Cancel'), h('button', { value: 'ok' }, 'Add'))));
    document.body.append(dialog);
    dialog.showModal();
    await new Promise((resolve) => dialog.addEventListener('close', resolve, { once: true }));
    dialog.remove();
    if (dialog.returnValue !== 'ok') return;
    let albumId = choice.value;
    if (!albumId) {
      if (!name.value.trim()) return;
      albumId = (await api('/v1/albums', { method: 'POST', json: { name: name.value.trim() } })).id;
    }
    const result = await api(`/v1/albums/${albumId}/photos`, { method: 'POST', json: { photo_ids: [...selection] } });
    toast(`Added ${result.changed} to “${result.album.name}”`);
    selection.clear();
    onDone();
  } catch (error) { showError(error); }
}

export async function exportIds(photoIds) {
  await startExport({ photo_ids: photoIds });
}

export async function startExport(body) {
  try {
    await api('/v1/exports', { method: 'POST', json: body });
    toast('Export started');
    navigate('/exports');
  } catch (error) { showError(error); }
}
