// Albums: the owner's albums with covers and counts; make a new one.
import { all, api } from '../api.js';
import { empty, formatDate, h, link, pageHeader, promptDialog, replace, showError, toast } from '../ui.js';

export async function render(main) {
  const list = h('ul', { class: 'album-grid' });
  main.append(pageHeader('Albums', h('button', {
    type: 'button', onclick: async () => {
      const name = await promptDialog('A new album', { label: 'Album name', confirmLabel: 'Create album' });
      if (!name) return;
      try { await api('/v1/albums', { method: 'POST', json: { name } }); toast(`Album “${name}” created`); await draw(); } catch (error) { showError(error); }
    },
  }, 'New album')), list);

  async function draw() {
    const albums = await all('/v1/albums');
    if (!albums.length) {
      list.replaceWith(empty('No albums yet', 'Make one here, from a search (“Save as album”), or from a selection in the library.'));
      return;
    }
    replace(list, albums.map((album) => {
      const cover = h('div', { class: 'album-cover' });
      // The chosen cover, else the album's first photo.
      const query = album.cover_photo_id ? null : { album: album.id, limit: 1 };
      (query ? api('/v1/photos', { query }).then((page) => page.items[0]?.thumbnail_url) : Promise.resolve(`/v1/photos/${album.cover_photo_id}/thumbnail`))
        .then((src) => src && cover.append(h('img', { src, alt: '', loading: 'lazy', width: 256, height: 256 })))
        .catch(showError);
      return h('li', { class: 'album-card', dataset: { albumId: album.id } }, link(`/albums/${album.id}`, {},
        cover,
        h('strong', {}, album.name),
        h('span', { class: 'hint' }, `${album.photo_count} photo${album.photo_count === 1 ? '' : 's'}${album.taken_from ? ` · ${formatDate(album.taken_from)} – ${formatDate(album.taken_to)}` : ''}`)));
    }));
  }
  await draw();
}
